"""Front-end drivers, the board HAL and the board start-up against the chip
models (host_tools/mp/chips), all under the MicroPython unix port."""
import json
import shutil
import subprocess

import pytest

from host_tools.firmware import BOARD_CONFIGS, FIRMWARE, ROOT, micropython_binary

CHECK = ROOT / "tests" / "mp_hw_check.py"
CHIPS = ROOT / "host_tools" / "mp"


def run(case, arg=""):
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(CHIPS), str(BOARD_CONFIGS), case,
                        *([arg] if arg else [])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_bq76952_reads_balances_and_reports_errors():
    out = run("bq")
    assert out["bringup"] == 0  # from the factory state (no CRC) to the firmware's settings, read back
    assert out["scan"] == 0 and out["cells_ok"]
    assert out["stack"] == [5316, 5310, 5300, -12345]  # stack, PACK, LD (10 mV), CC2 (userA) signed
    assert abs(out["ts1_dk"] - 3047) <= 1  # 31.5 degC as the chip computes it, in 0.1 K
    assert out["safety"] == [0, 8, 0, 0, 0, 0]  # the chip's own Safety Status A read back
    assert out["device_number"] == 0x7695  # subcommand read with the busy poll and checksum
    assert out["balance"] == 0 and out["cb_mask"] == 0x8005  # CB_ACTIVE_CELLS with checksum + length
    # ALL_FETS_ON: DSG only, since the chip's own COV (set above) keeps its CHG FET off
    assert out["fets_after_off"] == [False, 0, 0] and out["fets_after_on"] == 4
    assert out["corrupt"] == 2 and out["after_corrupt"] == 0  # ERR_CRC once, then good
    assert out["timeout"] == 1 and out["nack"] == 1  # ERR_BUS for a timeout and a missing device
    assert out["bad_crc_write"] == [1, True]  # the model discards a write whose CRC is wrong


@pytest.mark.parametrize("board", ["pico_bq76952.json", "esp32_2x_ltc6813.json"])
def test_crc_errors_are_retried_then_stale_measurement_trips(board):
    out = run("hal_stale", board)
    assert out["fresh_before"] == 1 and out["stale_before"] == 0
    fresh, bus_errors, stale_scans, stale = out["transient"]
    assert fresh == 1 and bus_errors == 10 and stale_scans == 0 and stale == 0  # one retry each tick
    # persistent failure: no fresh scan; STALE_MEASUREMENT trips at its 1000 ms (10 ticks)
    assert out["fresh_after"] == 0 and out["stale_scans"] == 30
    assert out["trip_tick"] in (9, 10), out
    assert out["outputs_after"] == 0 and out["internal_error"] == 0


def test_ltc681x_chain_reads_balances_and_detects_open_wires():
    out = run("ltc")
    assert out["measure"] == 0 and out["cells_ok"]  # after 3 s asleep: woken by the driver
    assert out["aux"][:6] == [10000, 11000, 12000, 13000, 14000, 30000]  # G1..G5, REF
    assert out["sc"] == [sum(30000 + 100 * k + 10 * i for k in range(18)) // 30 for i in (0, 1)]
    assert out["hasty_stale"] == [30000, 30100, 30200]  # not waiting the conversion time reads old values
    assert out["patient"] == [0, [30005, 30105, 30205]]
    assert out["pec"] == 2 and out["pec_then"] == 0 and out["silent"] == 2
    assert out["bad_cmd_ignored"]
    assert out["cfg"] == 0 and out["dcc"] == [0x20001, 0x01002]  # each device got its own DCC bits
    assert out["dcc_after_watchdog"] == [0, 0]  # chip watchdog: balancing stops without commands
    assert out["balance_off"] == [0, [0, 0]]
    # module 1 starts at open_pins index 19 (19 pins C0..C18 per module)
    for pin, (err, n_open, where) in out["open_wire"].items():
        assert err == 0 and n_open == 1 and where == [19 + int(pin)], (pin, out["open_wire"])
    assert out["healthy"] == [0, 0]


def test_open_wire_becomes_voltage_channel_fault():
    out = run("ltc_app_open_wire")
    assert out["before"] == [0, 0]
    a, b, bad = out["plain_scan"]
    assert 32000 < a < 34000 and 32000 < b < 34000 and bad == 0  # a plain scan cannot see it
    assert out["raw_after"] == [0, 0]  # ADOW found it: both cells beside C7 invalid
    fault, bad, outputs = out["after"]
    assert fault == 1 and bad == 2 and outputs == 0


def test_direct_adc_front_end():
    out = run("adc")
    assert out["fresh"] == 1
    want = [33010, 33220, 32900, 33450]  # 0.1 mV
    # taps through 12-bit quantisation: within 2 LSB of the highest tap's divider
    assert all(abs(a - b) <= 2 * 307 * 16 // 100 for a, b in zip(out["raw_cells"], want)), out["raw_cells"]
    assert all(abs(a - b) <= 2 for a, b in zip(out["raw_temps"], out["want_temps"]))
    assert abs(out["raw_pack"] - 1326) <= 2 and abs(out["raw_bus"] - 1326) <= 3
    assert abs(out["raw_current"]) <= 2  # zero current within 20 mA
    uncal, cal = out["calibration"]
    assert abs(uncal - 33340) < 40 and abs(cal - 33010) < 40  # the 1 % gain error corrected
    assert out["bleed"] == [0, 1, 0, 1] and out["bleed_safe"] == [0, 0, 0, 0]


def test_pump_and_contactor_io():
    out = run("io")
    assert out["duty"] == 32767  # 500 per mille
    assert out["irq_alloc"] is None and out["pulses"] == 70000 & 0xFFFF  # handler allocation-free, wraps
    # PRE is active low: off = level 1
    assert out["off_levels"] == [0, 1, 0] and out["pre_levels"] == [1, 0, 0]
    assert out["inputs"] == 1 | 4  # NEG fb (active low, 0), POS fb (1); enable (active low, 1) off
    assert out["safe_levels"] == [0, 1, 0]


@pytest.mark.parametrize("board", ["pico_bq76952.json", "esp32_2x_ltc6813.json", "pico_adc_4s.json"])
def test_whole_tick_through_each_front_end_allocates_nothing(board):
    out = run("lock", board)
    assert out["lock_catches"]  # the same lock does catch an allocation
    assert out["error"] is None and out["internal_error"] == 0, out
    assert out["ticks"] == 300 and out["fresh"] == 1 and out["valid_scans"] == 340


def test_board_start_reads_files_reports_reset_cause_and_feeds_watchdog(tmp_path):
    shutil.copy(BOARD_CONFIGS / "pico_bq76952.json", tmp_path / "board.json")
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(CHIPS), str(BOARD_CONFIGS),
                        "board_start", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    boot = json.loads(next(ln for ln in lines if ln.startswith('{"boot"')))["boot"]
    assert boot["hal"] == "board" and boot["board"] == "pico_bq76952" and boot["reset_cause"] == "wdt"
    assert boot["config"] == "current" or boot["config"], boot
    out = json.loads(lines[-1])
    assert out["ticks"] == 30 and out["feeds"] == 30 and out["wdt_timeout"] == 2000
    assert out["watchdog_reset_fault"] == 1  # machine.reset_cause() == WDT_RESET reported at boot
    assert out["fresh"] == 1 and out["internal_error"] == 0
    assert out["console_lines_sent"] > 0  # telemetry went out between ticks
    assert "log" in out["files"] and any(f.startswith("state.") for f in out["files"])
    # the board file's `can` section: the runner serves the inverter CAN between ticks (pylontech, 500 kbit/s)
    assert out["can_bitrate"] == 500000 and out["can_ids"] == [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E]
    assert out["boot_only_resident"] == []  # dropped once used: not in the running board's heap


def test_firmware_board_validation_names_the_field():
    msgs = run("board_errors")["messages"]
    assert msgs[0] == "board.afe.i2c.scl: pin 5 is already used by board.afe.i2c.sda"
    assert msgs[1].startswith("board.afe.temps: 3 thermistor inputs")
    assert msgs[2].startswith("board.afe.type: expected")
    assert msgs[3] == "board.analog.coolant_in: missing"
    assert msgs[4].startswith("board.afe.cell_channels[3]:")


def test_bq76952_fets_follow_the_positive_contactor_and_go_off_when_safe():
    out = run("fets")
    assert out["on"] == [5, 4]  # CHG + DSG on; DSG reads back as the POS feedback
    assert out["off"] == [0, 0]
    assert out["safe"] == [0, 0, 0, 0]  # FETs off, balancing off, contactor pins low
    assert out["log"][-2:] == ["ALL_FETS_OFF", "CB_ACTIVE_CELLS"]


def test_every_board_file_builds_its_hal():
    boards = run("build_all")["boards"]
    assert boards == {
        "esp32_2x_ltc6813.json": [36, 8, "Ltc681xFrontEnd", False],
        "esp32_bq76952.json": [16, 4, "Bq76952FrontEnd", False],
        "pico_adc_4s.json": [4, 2, "DirectAdcFrontEnd", False],
        "pico_bq76952.json": [16, 4, "Bq76952FrontEnd", False],
        "picow_bq76952.json": [16, 4, "Bq76952FrontEnd", True],
    }, boards


def test_ltc6811_sum_of_cells_scale_waits_and_dcp():
    out = run("ltc6811_sc")
    assert out["measure"] == 0
    assert abs(out["sc_mv"] - out["true_mv"]) <= 2  # SC x 20 x 100 uV on the LTC6811 (30 is the LTC6813's)
    cell_us, aux_us = out["waits"]
    assert cell_us >= 2335 and aux_us >= 2335  # LTC6804/6811 datasheet Tables 5 and 7, 7 kHz mode
    assert out["dcc"] == [0x005, 0, 0x005]  # DCP = 0: the switches pause for the conversion
