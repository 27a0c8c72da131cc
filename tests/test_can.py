"""Inverter CAN: the MCP2515 driver against its register-level chip model
(host_tools/mp/chips/mcp2515.py), all under the MicroPython unix port."""
import json
import subprocess

from host_tools.firmware import FIRMWARE, ROOT, micropython_binary

CHECK = ROOT / "tests" / "mp_can_check.py"
CHIPS = ROOT / "host_tools" / "mp"


def run(case, arg=""):
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(CHIPS), case, *([arg] if arg else [])],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    # streamed records: "C {call}" (a service call that queued frames), "F [t_us, id, bytes]" (a frame on the wire)
    out["calls"] = [json.loads(x[2:]) for x in lines if x.startswith("C ")]
    out["frames"] = [json.loads(x[2:]) for x in lines if x.startswith("F ")]
    return out


def test_mcp2515_bringup_from_reset_for_both_crystals():
    out = run("bringup")
    for xtal, cnf in (("8000000", [0x00, 0x90, 0x82]), ("16000000", [0x00, 0xF0, 0x86])):
        x = out[xtal]
        assert x["reset_canstat"] == 0x80 and x["reset_canctrl"] == 0x87  # configuration mode after reset
        assert x["start"] == 0 and x["mode"] == 0x00  # normal mode, confirmed in CANSTAT
        assert x["cnf"] == cnf and x["bitrate"] == 500000
        assert x["cnf1_after_normal_write"] == 0 and x["refused"] == 1  # CNF1 is configuration-mode only
    # the wrong crystal setting: 250 kbit/s on a 500 kbit/s bus; nothing arrives, the chip goes bus-off
    assert out["wrong_xtal_start"] == 0 and out["wrong_xtal_bitrate"] == 250000
    assert out["wrong_xtal_peer_rx"] == 0 and out["wrong_xtal_state"] == 3
    assert out["late_mode"] == 0  # a mode that shows after 3 reads is polled for
    assert out["never_mode"] == 3 and out["never_mode_reads"] < 40  # ERR_CHIP after a bounded number of reads
    assert out["skip_config_refused"] == 2  # bit timing written outside configuration mode is refused


def test_mcp2515_transmit_receive_and_overflow():
    out = run("traffic")
    assert out["start"] == 0 and out["send"] == [0, 0, 0, 0]
    ids = sorted(i for i, _ in out["peer_rx"])
    assert ids == [0x351, 0x355, 0x356, 0x35E]
    assert [b for i, b in out["peer_rx"] if i == 0x351] == [[0x14, 0x02, 0x74, 0x0E, 0x74, 0x0E, 0xCC, 0x01]]
    assert [len(b) for i, b in out["peer_rx"] if i == 0x355] == [4]
    assert out["tec_after_ok"] == [0, 0] and out["pending_empty"] == 0
    assert out["int_low"]  # INT follows RX0IF | RX1IF
    assert out["recv"] == [[0x305, 8, [0] * 8], [0x307, 8, [0x12, 0x34, 0x56, 0x78, 0x56, 0x49, 0x43, 0]]]
    assert out["recv_empty"] == -1
    # five frames without a read: two kept (RXB0, rollover RXB1), three lost and flagged
    assert out["lost"] == 3 and out["rx_overflows"] == 1 and out["eflg_cleared"] == 0 and out["kept"] == 2


def test_mcp2515_error_states():
    out = run("errors")
    # alone on the bus: each missing ACK adds 8 until error passive; then ISO 11898-1's
    # exception holds TEC at 128 (no bus-off); the fourth frame finds all three buffers busy
    assert out["noack_sends"] == [0, 0, 0, 1]
    assert out["noack"][1:] == [[2, 128]] * 4 and out["noack_1s"] == [2, 128, True]
    state, tec, n = out["peer_back"]
    assert n == 3 and tec == 125 and state == 1  # sent once a node ACKs; TEC falls by 1 per frame
    # stuck bus: bit errors, bus-off past 255, sends refused, recovery after 128 x 11 recessive bits
    assert out["stuck"][-1] == [3, 255] and out["busoff_send"][-1] == 2 and out["still_off"] == 3
    assert out["before_recovery"] == 3 and out["recovered"] == [0, 0] and out["sent_after"] == 3


# -- every frame the firmware sends, decoded with cantools from the project's DBC -------------------

import cantools  # noqa: E402
import pytest  # noqa: E402

DBC = ROOT / "host_tools" / "can" / "bms.dbc"

# Which rows raise which flag, written from the reference notes (not from can_profiles.py).
OV = {"CELL_OV", "CELL_OV_CRIT", "FE_COV"}
UV = {"CELL_UV", "CELL_UV_CRIT", "FE_CUV"}
OT = {"OT_CHG", "OT_DSG", "OT_CRIT", "FE_OTC", "FE_OTD"}
UT = {"UT_CHG", "UT_DSG", "FE_UTC", "FE_UTD"}
SYS = {"CELL_IMBALANCE", "SUM_MISMATCH", "VOLTAGE_CHANNEL", "THERMISTOR", "STUCK_READING", "STALE_MEASUREMENT",
       "CONTACTOR_WELDED", "PRECHARGE_FAILED", "INTERNAL_ERROR", "FE_CONFIG", "FE_OTHER"}
INTERNAL_WARN = {"PUMP_NO_FLOW", "COOLANT_FLOW_LOW", "COOLANT_DT", "COOLANT_SENSOR", "WATCHDOG_RESET",
                 "SOC_IMPLAUSIBLE", "INVERTER_SILENT", "CAN_BUS"}
CRITICAL = {"CELL_OV_CRIT", "CELL_UV_CRIT", "OT_CRIT", "SHORT_CIRCUIT", "SUM_MISMATCH", "VOLTAGE_CHANNEL",
            "STUCK_READING", "STALE_MEASUREMENT", "CONTACTOR_WELDED", "PRECHARGE_FAILED", "INTERNAL_ERROR",
            "FE_CONFIG", "FE_COV", "FE_CUV", "FE_OCC", "FE_OCD", "FE_SCD", "FE_OTHER"}


def pair(active):
    return 1 if active else 2


def expected(msg, s, cfg):
    """The fields a frame must carry, from the state the service read (physical units)."""
    sig, f = s["sig"], set(s["faults"])
    n = s["n_cells"]
    zero = cfg["zero_limit_da"]
    cvl_mv = n * cfg["cvl_cell_mv"]
    if s["valid_scans"]:
        # the highest cell may rise to cvl_cell_mv: the others' gaps to it come off
        cvl_mv = min(cvl_mv, sig["cell_sum_mv"] + n * (cfg["cvl_cell_mv"] - sig["cell_max_mv"]))
    cvl_mv = max(cvl_mv, n * cfg["dvl_cell_mv"])
    lim = lambda ma: (ma // 100 if ma >= 100 else zero) / 10  # noqa: E731
    soc = max(s["soc_cpct"], 0)
    soh = min(100, max(0, s["capacity_mah"] * 100 // 100000)) if s["capacity_learned"] else 100
    cur = sig["current_ma"]
    if msg == "BMS_Limits":
        return {"ChargeVoltageLimit": cvl_mv // 100 / 10, "ChargeCurrentLimit": lim(s["ccl_ma"]),
                "DischargeCurrentLimit": lim(s["dcl_ma"]), "DischargeVoltageLimit": n * cfg["dvl_cell_mv"] // 100 / 10}
    if msg == "BMS_SOC":
        out = {"StateOfCharge": soc // 100, "StateOfHealth": soh}
        if cfg["profile"] == "victron":
            out["StateOfChargeHiRes"] = soc / 100
        return out
    if msg == "BMS_Measurements":
        return {"BatteryVoltage": min(sig["cell_sum_mv"] // 10, 32767) / 100,
                "BatteryCurrent": (abs(cur) // 100) * (1 if cur >= 0 else -1) / 10,
                "BatteryTemperature": sig["temp_max_dc"] / 10}
    if msg == "BMS_PylonFlags":
        return {"ProtOverVoltage": int(bool(f & OV)), "ProtUnderVoltage": int(bool(f & UV)),
                "ProtOverTemperature": int(bool(f & OT)), "ProtUnderTemperature": int(bool(f & UT)),
                "ProtDischargeOverCurrent": int(bool(f & {"OC_DSG", "SHORT_CIRCUIT", "FE_OCD", "FE_SCD"})),
                "ProtChargeOverCurrent": int(bool(f & {"OC_CHG", "FE_OCC"})),
                "ProtSystemError": int(bool(f & SYS)), "ProtSystemErrorAlt": int(bool(f & SYS)),
                "AlarmHighVoltage": int("CELL_OV_WARN" in f), "AlarmLowVoltage": int("CELL_UV_WARN" in f),
                "AlarmHighTemperature": int(bool(f & {"OT_WARN", "COOLANT_OT"})), "AlarmLowTemperature": 0,
                "AlarmDischargeCurrentHigh": 0, "AlarmChargeCurrentHigh": 0,
                "AlarmInternalError": int(bool(f & INTERNAL_WARN)),
                "ModuleCount": cfg["modules"], "PN_P": ord("P"), "PN_N": ord("N")}
    if msg == "BMS_PylonRequest":
        return {"ChargeEnable": int(s["ccl_ma"] > 0), "DischargeEnable": int(s["dcl_ma"] > 0),
                "ForceChargeI": 0, "ForceChargeII": 0, "FullChargeRequest": 0}
    if msg == "BMS_Name":
        return {f"Name{k}": ord(c) for k, c in enumerate(cfg["name"].ljust(8))}
    if msg == "BMS_VictronAlarms":
        a = {"General": CRITICAL, "HighVoltage": OV, "LowVoltage": UV, "HighTemperature": {"OT_DSG", "OT_CRIT", "FE_OTD"},
             "LowTemperature": {"UT_DSG", "FE_UTD"}, "HighTemperatureCharge": {"OT_CHG", "FE_OTC"},
             "LowTemperatureCharge": {"UT_CHG", "FE_UTC"}, "HighDischargeCurrent": {"OC_DSG", "FE_OCD"},
             "HighChargeCurrent": {"OC_CHG", "FE_OCC"}, "Contactor": {"CONTACTOR_WELDED", "PRECHARGE_FAILED"},
             "ShortCircuit": {"SHORT_CIRCUIT", "FE_SCD"},
             "BmsInternal": {"INTERNAL_ERROR", "FE_CONFIG", "FE_OTHER", "STALE_MEASUREMENT", "VOLTAGE_CHANNEL", "THERMISTOR"},
             "CellImbalance": {"CELL_IMBALANCE"}}
        w = {"General": {"WATCHDOG_RESET", "SOC_IMPLAUSIBLE", "INVERTER_SILENT", "CAN_BUS"}, "HighVoltage": {"CELL_OV_WARN"},
             "LowVoltage": {"CELL_UV_WARN"}, "HighTemperature": {"OT_WARN"}, "HighTemperatureCharge": {"OT_WARN"},
             "BmsInternal": {"COOLANT_OT", "PUMP_NO_FLOW", "COOLANT_FLOW_LOW", "COOLANT_DT", "COOLANT_SENSOR", "WATCHDOG_RESET"}}
        names = ["General", "HighVoltage", "LowVoltage", "HighTemperature", "LowTemperature", "HighTemperatureCharge",
                 "LowTemperatureCharge", "HighDischargeCurrent", "HighChargeCurrent", "Contactor", "ShortCircuit",
                 "BmsInternal", "CellImbalance", "Reserved13", "Reserved14", "Reserved15"]
        out = {}
        for nm in names:
            out["Alarm" + nm] = pair(f & a.get(nm, set()))
            out["Warning" + nm] = pair(f & w.get(nm, set()))
        return out
    if msg == "BMS_Info":
        return {"Model": 1, "FirmwareVersion": 0x0100, "AvailableCapacity": s["usable_mah"] // 1000}
    if msg == "BMS_Modules":
        m = cfg["modules"]
        return {"ModulesOk": m if s["valid_scans"] else 0, "ModulesBlockingCharge": m if s["ccl_ma"] <= 0 else 0,
                "ModulesBlockingDischarge": m if s["dcl_ma"] <= 0 else 0, "ModulesOffline": 0 if s["valid_scans"] else m}
    if msg == "BMS_Extremes":
        return {"MinCellVoltage": sig["cell_min_mv"] / 1000, "MaxCellVoltage": sig["cell_max_mv"] / 1000,
                "MinTemperature": (sig["temp_min_dc"] + 2732) // 10, "MaxTemperature": (sig["temp_max_dc"] + 2732) // 10}
    if msg == "BMS_Capacity":
        return {"InstalledCapacity": 100}
    raise AssertionError("no expectation for " + msg)


PROFILE_IDS = {"pylontech": {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E},
               "victron": {0x351, 0x355, 0x356, 0x35A, 0x35E, 0x35F, 0x372, 0x373, 0x379},
               "sma_lv": {0x351, 0x355, 0x356, 0x35E, 0x35F}}


@pytest.mark.parametrize("profile", ["pylontech", "victron", "sma_lv"])
def test_every_frame_decodes_to_the_firmware_state(profile):
    out = run("frames", profile)
    db = cantools.database.load_file(str(DBC))
    cfg = out["settings"]
    calls = out["calls"]
    starts = [c["t_us"] for c in calls]
    fields = frames = 0
    seen = set()
    for t_us, can_id, data in out["frames"]:
        # the call that queued it: the last one at or before the frame left (100 ms apart)
        k = max(i for i, t0 in enumerate(starts) if t0 <= t_us)
        assert t_us - starts[k] < 100000
        msg = db.get_message_by_frame_id(can_id)
        assert len(data) == {0x355: 6 if profile == "victron" else 4}.get(can_id, msg.length), (hex(can_id), data)
        got = db.decode_message(can_id, bytes(data), decode_choices=False, allow_truncated=True)
        want = expected(msg.name, calls[k]["state"], cfg)
        assert set(got) == set(want), msg.name
        for name, v in want.items():
            assert got[name] == pytest.approx(v, abs=1e-9), (msg.name, name, got[name], v, calls[k]["state"])
            fields += 1
        frames += 1
        seen.add(can_id)
    assert seen == PROFILE_IDS[profile]
    assert frames == out["counters"]["sent"] and frames >= 140 * len(seen)  # every frame, every second
    print(f"\n{profile}: {frames} frames, {fields} fields decoded with cantools, 100 % equal to the state")
    # the run went through the interesting states, not only a resting pack
    faults = set().union(*(set(c["state"]["faults"]) for c in calls))
    assert {"CELL_OV_WARN", "CELL_OV", "OT_CHG", "OT_CRIT", "INVERTER_SILENT"} <= faults
    # the CVL came down while cell 4 ran ahead (below n x cvl_cell_mv)
    cvls = [db.decode_message(i, bytes(d))["ChargeVoltageLimit"] for _, i, d in out["frames"] if i == 0x351]
    assert min(cvls) < 16 * cfg["cvl_cell_mv"] / 1000 - 0.5 and max(cvls) == 16 * cfg["cvl_cell_mv"] / 1000
    c = out["counters"]
    assert c["rx_unknown"] > 0 and c["rx_bad_dlc"] > 0 and c["silences"] == 1 and out["internal_error"] == 0
    assert 5000 <= out["silent_warn_ms"] <= 5000 + 1000 + 200  # silent_ms, the keep-alive period, two ticks


def test_can_service_allocates_nothing():
    out = run("lock")
    assert out["control"] == 1  # heap_lock catches an allocation
    for prof in ("pylontech", "victron", "sma_lv"):
        x = out[prof]
        assert x["alloc_errors"] == 0, (prof, x)
        # the locked calls went through every path: sending, TX full, passive, bus-off + restart, RX good and bad
        assert x["sent"] > 0 and x["tx_full"] > 0 and x["passive"] > 0 and x["bus_off"] > 0 and x["restarts"] > 0, x
        assert x["rx_ok"] > 0 and x["rx_unknown"] > 0 and x["rx_bad_dlc"] > 0 and x["rx_floods"] > 0, x


# -- closed loop in the simulator: the plant's inverter on the CAN frames --------------------------

def _outcome(res):
    from host_tools import report
    return ([(v.ok, v.text.split(":")[0]) for v in report.check(res)],
            sorted({name for _, name, what in res.fault_events if what == "raised"}),
            [x[1] if isinstance(x, tuple) else x for x in getattr(res, "step_ends", [])])


def test_closed_loop_over_can_same_outcome_and_stop_when_frames_stop(tmp_path):
    import copy

    import numpy as np

    from host_tools import scenario
    from host_tools.sim import Simulation

    sc = scenario.load(ROOT / "scenarios" / "afe_short.toml")
    # shorter for make test (make can-loop runs the full scenarios): 1 min rest, 2 min discharge
    sc.profile[1].duration_s = 60
    sc.profile[2].timeout_s = 120
    plain = Simulation(sc).run()
    loop = Simulation(copy.deepcopy(sc), can="victron", can_frames=tmp_path / "frames.txt").run()
    assert loop.can_limits and all(v.ok for v in __import__("host_tools.report", fromlist=["check"]).check(loop))
    assert _outcome(loop) == _outcome(plain)
    # the inverter's limits came off the bus, once a second: never above what the firmware
    # allowed within the last period (+ the tick the frame takes to reach the plant), 0.1 A steps
    got = np.array([c for _, c, _, _ in loop.can_limits])
    fw = np.array(loop.ccl)
    worst = max(got[i] - fw[max(0, i - 11):i + 1].max() for i in range(len(fw)))
    assert worst <= 0.1 + 1e-9, worst
    assert got.max() > 40  # and it did charge on them
    # every frame of the run decoded with the DBC equals the firmware's state of the tick it was built
    # from (the sim frame's CCL, DCL, SOC, fault bits of that tick; 100 ms ticks)
    db = cantools.database.load_file(str(DBC))
    raised = {}
    active = set()
    events = sorted(loop.fault_events)
    ei = 0
    faults_at = []
    for k, t in enumerate(loop.t):
        while ei < len(events) and events[ei][0] <= t + 1e-9:
            (active.add if events[ei][2] == "raised" else active.discard)(events[ei][1])
            ei += 1
        faults_at.append(frozenset(active))
    del raised
    checked = 0
    for ln in (tmp_path / "frames.txt").read_text().splitlines():
        t_us, cid, data = ln.split()
        k = int(t_us) // 100000
        cid = int(cid, 16)
        m = db.decode_message(cid, bytes.fromhex(data), decode_choices=False)
        if cid == 0x351:
            assert m["ChargeCurrentLimit"] == pytest.approx(round(loop.ccl[k] * 1000) // 100 / 10, abs=1e-9), (k, m)
            assert m["DischargeCurrentLimit"] == pytest.approx(round(loop.dcl[k] * 1000) // 100 / 10, abs=1e-9), (k, m)
        elif cid == 0x355:
            cpct = max(0, round(loop.soc_fw[k] * 10000))
            assert (m["StateOfCharge"], m["StateOfChargeHiRes"]) == (cpct // 100, pytest.approx(cpct / 100)), (k, m)
        elif cid == 0x35A:
            f = faults_at[k]
            assert m["AlarmHighVoltage"] == pair(f & OV) and m["WarningHighVoltage"] == pair("CELL_OV_WARN" in f), (k, m)
            assert m["WarningLowVoltage"] == pair("CELL_UV_WARN" in f) and m["AlarmGeneral"] == pair(f & CRITICAL), (k, m)
        else:
            continue
        checked += 1
    print(f"\nclosed loop: {checked} frames (0x351, 0x355, 0x35A) equal the firmware's state of their tick")
    assert checked > 3 * 0.95 * loop.sim_s
    # a silent BMS: the cable cut during the charge, the charger stops within 3 s (Victron)
    cut = copy.deepcopy(sc)
    cut.profile = cut.profile[:1]
    cut.profile[0].timeout_s = 130
    sim = Simulation(cut, can="victron", can_cut_at_s=120.0)
    res = sim.run()
    last = sim.inverter.last_limits_s  # the last 0x351 that reached the inverter
    t = np.array(res.t)
    cur = np.array(res.cur)
    assert cur[(t > 100) & (t < 120)].min() > 10  # charging before the cut
    stop = t[(t >= 120) & (np.abs(cur) < 1e-9)].min()
    print(f"\nsilent BMS: plant inverter stopped {stop - last:.1f} s after the last 0x351 ({stop - 120:.1f} s after the cut)")
    assert 119 <= last < 120 and 3.0 <= stop - last <= 3.0 + 0.2  # Victron's 3 s, then the next tick


def test_bmsctl_can_decodes_and_logs_for_python_can(tmp_path):
    import io
    import threading

    import can

    from host_tools import canmon

    out = run("frames", "victron")
    src = tmp_path / "frames.txt"
    src.write_text("".join(f"{t} {i:x} {bytes(d).hex()}\n" for t, i, d in out["frames"][:400]))
    for log in ("bus.log", "bus.asc"):
        text = io.StringIO()
        assert canmon.run(str(src), str(tmp_path / log), follow=False, out=text) == 0
        lines = text.getvalue().splitlines()
        assert lines[-1].startswith("400 frames")
        assert any("BMS_Limits: ChargeVoltageLimit=" in ln for ln in lines)
        assert any("BMS_Name: 'MPY-BMS '" in ln for ln in lines)
        back = list(can.LogReader(str(tmp_path / log)))  # python-can reads the log back
        assert [(m.arbitration_id, bytes(m.data)) for m in back] == [(i, bytes(d)) for _, i, d in out["frames"][:400]]
    # a python-can bus (the virtual interface stands in for a USB-CAN adapter)
    tx = can.Bus(interface="virtual", channel="h16test")
    got = []

    def send():
        import time
        time.sleep(0.3)
        tx.send(can.Message(arbitration_id=0x351, data=bytes.fromhex("1402740E740ECC01"), is_extended_id=False))
        tx.send(can.Message(arbitration_id=0x123, data=b"\x01", is_extended_id=False))

    th = threading.Thread(target=send)
    th.start()
    text = io.StringIO()
    canmon.run("virtual:h16test", None, duration=1.0, out=text)
    th.join()
    tx.shutdown()
    got = text.getvalue()
    assert "ChargeVoltageLimit=53.2V ChargeCurrentLimit=370A DischargeCurrentLimit=370A DischargeVoltageLimit=46V" in got
    assert "123 [1] 01  (not in the DBC)" in got


def test_can_config_errors_name_the_field(tmp_path):
    import shutil

    from host_tools.boardcfg import BoardConfigError, load_board_config

    good = json.loads((ROOT / "board_configs" / "pico_bq76952.json").read_text())
    for patch, msg in (({"profile": "growatt"}, "can.profile"), ({"crystal_hz": 12000000}, "can.crystal_hz"),
                       ({"cs": 4}, "can.cs: pin 4 is already used by afe.i2c.sda"),
                       ({"name": "TOOLONGNAME"}, "can.name"),
                       ({"cvl_cell_mv": 3400, "dvl_cell_mv": 3400}, "can.dvl_cell_mv")):
        bad = json.loads(json.dumps(good))
        bad["can"].update(patch)
        p = tmp_path / "b.json"
        p.write_text(json.dumps(bad))
        with pytest.raises(BoardConfigError, match=msg.replace("(", r"\(")):
            load_board_config(p)
    del shutil
    # the firmware side checks again (a board's filesystem can hold anything)
    out = run("config_errors")
    del out["calls"], out["frames"]
    assert out == {
        "profile": "board.can.profile: expected one of pylontech, sma_lv, victron, got 'growatt'",
        "victron_name": "board.can.name: 'PYLON' makes a Victron system override the BMS's limits (dvcc.py brand detection)",
        "period": "board.can.period_ms: 50 outside 100..10000",
        "cvl": "board.can.cvl_cell_mv: 3700 outside 2851..3450",
        "crystal": "board.can.crystal_hz: expected 8000000 or 16000000, got 12000000",
        "ok": "pylontech",
    }, out
