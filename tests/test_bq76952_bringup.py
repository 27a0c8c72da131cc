"""BQ76952 bring-up from the chip's reset defaults (bms/drivers/bq76952_setup.py)
against the chip model (host_tools/mp/chips/bq76952.py), and the model's
rules catching drivers that skip or reorder a step; under the unix port."""
import json
import subprocess

from host_tools.firmware import BOARD_CONFIGS, FIRMWARE, ROOT, micropython_binary

CHECK = ROOT / "tests" / "mp_bq_bringup_check.py"
CHIPS = ROOT / "host_tools" / "mp"


def run(case):
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(CHIPS), str(BOARD_CONFIGS), case],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_factory_fresh_chip_is_brought_up_and_read_back():
    out = run("rules")
    g = out["good"]
    assert g["err"] == 0 and g["failed"] is None
    assert g["crc"] and not g["cfgupdate"] and g["ignored"] == 0 and g["otp"] == 0
    assert g["da"] == 0x06  # 10 mA / 10 mV user units
    err, cc2, stack, cells = out["good_scan"]
    assert err == 0 and cc2 == -2000 and stack == 5300 and cells == [3300, 3301, 3302]  # CRC reads in the units written


def test_each_rule_of_the_model_catches_a_wrong_driver():
    out = run("rules")
    # data-memory writes outside CONFIG_UPDATE are ignored: the chip never gets CRC mode, the swap finds no CRC answer
    for case in ("no_cfgupdate", "exit_first"):
        o = out[case]
        assert o["err"] != 0 and o["ignored"] > 0 and not o["crc"] and o["da"] == 0x05, (case, o)
    # wrong checksum or wrong length: ignored, same outcome
    for case in ("bad_checksum", "bad_length"):
        o = out[case]
        assert o["err"] != 0 and o["ignored"] > 0 and o["da"] == 0x05, (case, o)
    # the Comm Type applies only on SWAP_COMM_MODE
    assert out["no_swap"]["err"] != 0 and not out["no_swap"]["crc"]
    # no CRC until changed: CRC-framed writes to a fresh chip are garbage to it
    o = out["assumes_crc"]
    assert o["err"] != 0 and o["failed"] == "SET_CFGUPDATE" and not o["crc"]
    # the factory address applies until changed
    assert out["wrong_address"]["err"] == 1 and out["wrong_address"]["failed"].startswith("no answer")
    # a setting the chip did not keep is found by the read-back, by name
    assert out["dropped"]["err"] == 4 and out["dropped"]["failed"] == "VCell Mode"
    # skipping the units setting leaves 1 mA units: 20 A reads as 20000 counts, ten times the 10 mA value
    assert out["no_units"]["err"] == 0 and out["no_units_cc2"] == -20000
    for o in out.values():
        if isinstance(o, dict):
            assert o["otp"] == 0  # never OTP


def test_already_and_half_configured_chips():
    out = run("rules")
    assert out["configured"]["err"] == 0 and out["configured_swaps"] == 0  # found in CRC mode: no swap needed
    assert out["half"]["err"] == 0 and out["half"]["da"] == 0x06


def test_measurements_pause_in_config_update():
    assert run("pause")["pause"] == [3300, 3456]  # the old cell 1 while in CONFIG_UPDATE, the new one after


def test_chip_that_does_not_answer_is_a_fault_at_boot_and_nothing_closes():
    out = run("hal")
    sig, fault, valid, outs = out["silent"]
    assert sig == 1 and fault == 1 and valid == 0 and outs == 0
    sig, fault, valid, _, crc, otp = out["answered"]
    assert sig == 0 and fault == 0 and valid and crc and otp == 0  # answered later: brought up, cleared
    assert "FE_CONFIG" not in out["active"]
    # the bring-up's code is boot-only: loaded for it, dropped once the chip is configured
    assert out["setup_loaded"] and out["setup_dropped"]


def test_short_between_two_scans_is_caught_by_the_chip_layer():
    r = subprocess.run([micropython_binary(), str(ROOT / "tests" / "mp_hw_check.py"), str(FIRMWARE), str(CHIPS),
                        str(BOARD_CONFIGS), "short_pulse"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["before"] == [5, 0, 5]  # closed, chip FETs on
    assert out["too_short"] == [5, 0, 0]  # 100 us: shorter than the programmed SCD delay, nothing trips
    outputs, fe_scd, short_circuit, status_a, dsg_fet, discharge_ma = out["after"]
    assert fe_scd == 1 and status_a & 0x80 and dsg_fet == 0  # the chip's SCD, its DSG FET off
    assert short_circuit == 0 and discharge_ma == 0  # the firmware's own scan never saw the pulse
    assert outputs == 0  # FE_SCD opened the contactors
