"""The compiled lock-step loop (host_tools/fused_loop.c) against its twin,
the Python loop: the same scenario and seed, run both ways against the
real firmware, must give the same record to the last bit (every per-tick
series, the decimated cell rows, the event, fault, contactor, step and
grid books, the energies, the fleet's meter). And the loop must refuse a
firmware that answers wrongly or not at all as the Python one does."""
import copy
import os
import socket
import threading

import numpy as np
import pytest

from host_tools import frames, fused, scenario
from host_tools.link import FirmwareError, FirmwareLink
from host_tools.loop import run_loop
from host_tools.pack_plant import PackPlant
from host_tools.record import SERIES, Result
from host_tools.sim import Simulation

from conftest import SCENARIOS

CHARGE = """
name = "fused_charge"
seed = 11
tick = "100 ms"
[pack]
chemistry = "{chem}"
cells = {cells}
temps = {temps}
capacity = "50 Ah"
capacity_spread = "3 %"
initial_soc = "{soc}"
initial_soc_range = "6 %"
sense_wire_resistance = "0.3 ohm"
[sensors]
cell_noise = "3 mV"
current_noise = "0.1 A"
current_offset = "0.05 A"
[thermal]
ambient = "31 degC"
daily_swing = "8 K"
peak_time = "0.1 h"
[firmware]
# bleed during the charge too, at any voltage: balancing in every run
balance_floor_mv = 2500
balance_rest_ma = 100000
[[profile]]
step = "charge"
current = "1 C"
cv_voltage = "{cv}"
termination = "0.2 C"
timeout = "{charge_min} min"
[[profile]]
step = "rest"
duration = "1 min"
[[profile]]
step = "discharge"
current = "1.5 C"
timeout = "3 min"
"""

# Starts at 23:30 with the sun up from 00:06 to 00:36: day 0 has no sun, so
# the first weather draw is day 1's (drawing ahead would shift every day).
HOUSEHOLD = """
name = "fused_household"
seed = 5
tick = "1 s"
[pack]
chemistry = "LFP"
cells = 16
temps = 4
capacity = "100 Ah"
initial_soc = "70 %"
[sensors]
cell_noise = "5 mV"
[thermal]
ambient = "20 degC"
[firmware]
grid_reserve_cpct = 3000
[firmware.faults]
STUCK_READING = [10000, 0, 5000, 0]
[[profile]]
step = "household"
duration = "100 min"
start_time = "23.5 h"
cv_voltage = "3.55 V"
solar_peak = "0.4 C"
solar_start = "0.1 h"
solar_end = "0.6 h"
solar_variation = "50 %"
load_day = "0.05 C"
load_night = "0.1 C"
[[action]]
kind = "grid_start"
at = "40 min"
power = "2 kW"
duration = "20 min"
[[action]]
kind = "enable_off"
at = "75 min"
[[action]]
kind = "enable_on"
at = "77 min"
"""


def _load(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return scenario.load(p)


class _Meter(Simulation):
    """A Simulation whose plant keeps the fleet's energy meter."""
    fused = None

    def _loop(self, link):
        res = Result(self.sc, link.hello)
        self.bins = np.zeros(12)
        plant = PackPlant(self.sc, res, 7, None, (600.0, self.bins))
        return run_loop(link, plant, res, self.stop_on_fault, self.linger_s, False, fused=self.fused)


def _both(sc, **kw):
    out = []
    for mode in (False, True):
        sim = _Meter(copy.deepcopy(sc), **kw)
        sim.fused = mode
        out.append((sim.run(), sim.bins))
    return out


def _assert_same(a, b):
    for name in SERIES + ("cell_t", "ambient", "coolant"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    for name in ("cell_v", "cell_temp"):
        assert np.array_equal(np.array(getattr(a, name)), np.array(getattr(b, name))), name
    for name in ("events", "fault_events", "contactor_events", "step_ends", "charge_ends", "grid_ends", "injections",
                 "actions", "grid_energy_wh", "pump_energy_wh", "balance_energy_wh", "heater_energy_wh",
                 "true_capacity_ah", "capacity_mah_fw", "ticks", "internal_error"):
        assert getattr(a, name) == getattr(b, name), name


def test_the_compiled_loop_is_built():
    assert fused.built(), "host_tools._fused_loop is missing: `make setup` builds it (gcc, Python headers)"


@pytest.mark.parametrize("chem,cells,temps,soc,cv,charge_min", [
    ("LFP", 16, 4, "55 %", "3.55 V", 6),   # CV, balancing through the sense wires, noise, the diffusion lag
    ("NMC", 96, 24, "80 %", "4.15 V", 2),  # numpy's pairwise sums in blocks of 8
    ("LFP", 192, 8, "50 %", "3.55 V", 1),  # ... and split in halves (> 128 cells)
])
def test_same_record_as_the_python_loop(tmp_path, chem, cells, temps, soc, cv, charge_min):
    sc = _load(tmp_path, CHARGE.format(chem=chem, cells=cells, temps=temps, soc=soc, cv=cv, charge_min=charge_min))
    (a, bins_a), (b, bins_b) = _both(sc)
    assert a.fused is None and b.fused is not None
    _assert_same(a, b)
    # the compiled loop really ran the run, Python only the odd tick
    assert b.fused["fused"] > 0.95 * b.ticks, b.fused
    assert [k for _, k, _, _ in a.step_ends] == ["charge", "rest", "discharge"]
    assert a.balancing.max() > 0 and np.array_equal(bins_a, bins_b)


def test_same_record_household_grid_event_enable(tmp_path):
    sc = _load(tmp_path, HOUSEHOLD)
    (a, bins_a), (b, bins_b) = _both(sc)
    _assert_same(a, b)
    assert b.fused["fused"] > 0.9 * b.ticks, b.fused
    assert a.grid_energy_wh > 100 and np.array_equal(bins_a, bins_b) and bins_a.sum() > 100
    assert a.cur.max() > 1.0  # the sun charged the pack on day 1


# Every injector, with its intermittent pattern where it has one: the
# 2 min charge, 1 min rest and 3 min discharge of CHARGE (16 cells).
INJECTIONS = {
    "open_sense_wire": 'cell = 3\nat = "30 s"\non = "2 s"\nperiod = "7 s"\ncount = 5',
    "stuck_adc": 'cell = 5\nat = "20 s"\non = "3 s"\nperiod = "10 s"',
    "thermistor_open": 'sensor = 1\nat = "40 s"',
    "thermistor_short": 'sensor = 2\nat = "40 s"\nduration = "30 s"',
    "coolant_sensor_open": 'at = "30 s"\non = "5 s"\nperiod = "20 s"',
    "frontend_comm_lost": 'at = "50 s"\nduration = "1.5 s"',
    "flow_meter_missing": 'at = "10 s"\nmissing = "50 %"',
    "contactor_aux_chatter": 'at = "60 s"\non = "1 s"\nperiod = "20 s"',
    "charger_no_stop": 'at = "0 s"',
    "load_short": 'at = "200 s"\nresistance = "0.05 ohm"',
    "cell_internal_short": 'cell = 4\nat = "30 s"\nresistance = "0.05 ohm"',
    "pump_seized": 'at = "20 s"',
    "coolant_leak": 'at = "10 s"\nduration = "120 s"',
    "load_ignores_limits": 'at = "0 s"',
    "contactor_welded": 'at = "60 s"',
    "precharge_resistor_open": 'at = "0 s"',
    "internal_error": 'at = "45 s"',
    "short_pulse": 'at = "200 s"',
}


@pytest.mark.parametrize("kind", sorted(INJECTIONS))
def test_same_record_with_each_fault_injection(tmp_path, kind):
    text = CHARGE.format(chem="LFP", cells=16, temps=4, soc="60 %", cv="3.55 V", charge_min=2)
    # warm enough that the pump runs (the flow faults need flow)
    text = text.replace('ambient = "31 degC"', 'ambient = "36 degC"\ninitial = "36 degC"')
    sc = _load(tmp_path, text + f'[[fault]]\nkind = "{kind}"\n' + INJECTIONS[kind] + "\n")
    (a, _), (b, _) = _both(sc)
    _assert_same(a, b)
    assert a.injections and a.injections[0][1] == kind
    # C ran the injected ticks too: Python only around events and the injection
    assert b.fused["fused"] > 0.8 * b.ticks, b.fused


def test_injections_change_what_the_firmware_sees(tmp_path):
    """(So the differential tests above compare runs in which the faults act.)"""
    text = CHARGE.format(chem="LFP", cells=16, temps=4, soc="60 %", cv="3.55 V", charge_min=2)
    seen = {}
    for kind in ("thermistor_open", "open_sense_wire", "pump_seized"):
        sc = _load(tmp_path, text + f'[[fault]]\nkind = "{kind}"\n' + INJECTIONS[kind] + "\n", kind + ".toml")
        res = Simulation(sc).run()
        seen[kind] = {n for _, n, w in res.fault_events if w == "raised"}
    assert "THERMISTOR" in seen["thermistor_open"], seen
    assert "VOLTAGE_CHANNEL" in seen["open_sense_wire"] or "CELL_UV_CRIT" in seen["open_sense_wire"], seen


def test_bench_scenario_same_record(tmp_path):
    sc = scenario.load(SCENARIOS / "bench_1h.toml")
    sc.profile[0].timeout_s = sc.profile[1].timeout_s = 120
    (a, _), (b, _) = _both(sc)
    _assert_same(a, b)


# -- a firmware that misbehaves ---------------------------------------------------

HELLO = {"cells": 16, "temps": 4, "faults": ["A", "B"], "severity": [1, 2],
         "settings": {"cell_gain_q16": [65536] * 16, "cell_offset_mv": [0] * 16}}


def _fake_firmware(recv, send, close, answer):
    """Reads sensor frames and answers each with answer(seq) (None: close)."""
    size = frames.sensor_struct(16, 4).size
    try:
        while True:
            got = b""
            while len(got) < size:
                chunk = recv(size - len(got))
                if not chunk:
                    return
                got += chunk
            seq = frames.sensor_struct(16, 4).unpack(got)[3]
            out = answer(seq)
            if out is None:
                return
            if out:
                send(out)
    finally:
        close()


def _fake_link(transport):
    """A link to a fake firmware over a socket pair (as the virtual board
    attaches one) or over two pipes (as FirmwareLink starts the firmware);
    the answer's deadline 0.5 s. Returns the link, the fake's three ends
    of the transport and a closer for ours."""
    if transport == "socket":
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.settimeout(0.5)  # the acceptor's deadline: attach takes it
        link = FirmwareLink.attach(ours, HELLO)
        assert link.timeout_ms == 500
        return link, (theirs.recv, theirs.sendall, theirs.close), ours.close
    to_fw_r, to_fw_w = os.pipe()
    from_fw_r, from_fw_w = os.pipe()
    link = FirmwareLink({})
    link._fds(from_fw_r, to_fw_w)
    link._setup(HELLO)
    link.timeout_ms = 500

    def close_theirs():
        os.close(to_fw_r)
        os.close(from_fw_w)

    def close_ours():
        link._close_fds()
    return link, (lambda k: os.read(to_fw_r, k), lambda b: os.write(from_fw_w, b), close_theirs), close_ours


def _act_frame(seq, magic=frames.ACT_MAGIC):
    s = frames.actuator_struct(16)
    vals = [magic, frames.VERSION, 0, seq, 0, 0, 0, 0, 0, 100000, 100000, 5000, 0, bytes(8), 0, 0, 0]
    vals += [0] * (4 * frames.EV_SLOTS) + [0, 0, 100000, 0, 0, 0, 0, bytes(2)]
    return s.pack(*vals)


@pytest.mark.parametrize("answer,message", [
    (lambda seq: _act_frame(seq) if seq < 50 else _act_frame(seq, magic=0x1234), "bad actuator frame for seq 50"),
    (lambda seq: _act_frame(seq) if seq < 50 else _act_frame(seq + 1), "bad actuator frame for seq 50"),
    (lambda seq: _act_frame(seq) if seq < 50 else None, "closed the connection"),
    (lambda seq: _act_frame(seq) if seq < 50 else b"", "did not answer"),
])
@pytest.mark.parametrize("transport", ["pipes", "socket"])
def test_a_wrong_or_silent_firmware_is_an_error(tmp_path, answer, message, transport):
    sc = scenario.load(SCENARIOS / "bench_1h.toml")
    link, theirs, close_ours = _fake_link(transport)
    th = threading.Thread(target=_fake_firmware, args=(*theirs, answer), daemon=True)
    th.start()
    try:
        res = Result(sc, HELLO)
        plant = PackPlant(sc, res)
        with pytest.raises(FirmwareError, match=message):
            run_loop(link, plant, res, fused=True)
        assert len(res.t) == 50  # the ticks before it are in the record, none after
    finally:
        close_ours()
        th.join(timeout=5)


def test_stop_on_fault_ends_both_loops_at_the_same_tick(tmp_path):
    # a warm pack raises OT_WARN by itself (no injection): the run stops
    # linger_s after it, in C as in Python (PK_STOP)
    text = CHARGE.format(chem="LFP", cells=16, temps=4, soc="50 %", cv="3.55 V", charge_min=6)
    sc = _load(tmp_path, text.replace('ambient = "31 degC"', 'ambient = "53 degC"\ninitial = "53 degC"'))
    (a, _), (b, _) = _both(sc, stop_on_fault="OT_WARN", linger_s=30.0)
    _assert_same(a, b)
    raised = [t for t, n, w in a.fault_events if n == "OT_WARN" and w == "raised"]
    assert raised and abs(a.t[-1] - (raised[0] + 30.0)) < 0.2, (raised, a.t[-1])
    assert b.fused["calls"].get(fused.lib.PK_STOP) == 1 and b.fused["fused"] > 250  # C ran the linger and stopped
