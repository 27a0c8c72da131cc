"""Hypothesis drives the firmware (under the unix port, through the real sim
HAL) with random measurement sequences and checks the safety invariants on
every tick:

* the contactors are never commanded closed while a critical fault is active;
* charging is never allowed (CCL > 0) with a cell at or above the CELL_OV
  trip or a cell temperature below the charge minimum;
* no cell is bled below the balancing floor or above the balancing
  temperature limit;
* every fault raised appears in the telemetry fault bits and, as an event,
  in the event record (and no event claims a fault that was not raised).

Invariants are judged on the values the firmware last received in a
complete scan. Temperatures go through the NTC table (a few 0.1 degC of
interpolation error), so temperature invariants are checked 1 degC clear
of the threshold.
"""
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, precondition

from host_tools import frames
from host_tools.link import FirmwareLink
from host_tools.plant import ntc_counts

N, M = 8, 3
CONFIG = {"board": "sim", "hal": "sim", "cells": N, "temps": M, "capacity_mah": 100000, "chemistry": "LFP"}
OUT_NEG, OUT_PRE, OUT_POS = 1, 2, 4
MARGIN_C = 1.0

interesting_mv = [2490, 2500, 2510, 2790, 2800, 2810, 2900, 3390, 3400, 3410, 3440, 3450, 3460,
                  3540, 3550, 3560, 3590, 3600, 3610, 3640, 3650, 3660, 4000]
mv = st.one_of(st.sampled_from(interesting_mv), st.integers(2000, 4500), st.integers(0, 6553))
temp_c = st.one_of(st.sampled_from([-21, -20, -1, 0, 1, 2, 44, 45, 46, 54, 55, 56, 60, 61]), st.integers(-40, 125))


class Protection(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.link = FirmwareLink(CONFIG).__enter__()
        h = self.link.hello
        self.names = h["faults"]
        self.sev = h["severity"]
        self.trip = dict(zip(self.names, h["trip"]))
        self.floor = h["settings"]["balance_floor_mv"]
        self.bal_max_c = h["settings"]["balance_max_temp_dc"] / 10
        self.cells = [3300] * N
        self.temps = [25] * M
        self.therm_bad = [False] * M
        self.current_ma = 0
        self.enable = True
        self.welded = False
        self.stale = False
        self.k = 0
        self.outputs = 0
        self.faults = 0
        self.pending = {}  # fault index -> frames waited for its event
        self.seen_cells = None
        self.seen_tmin = self.seen_tmax = None
        self.pulses = 0
        self.clear_next = False

    def teardown(self):
        self.link.__exit__(None, None, None)

    @rule(values=st.lists(mv, min_size=N, max_size=N))
    def set_cells(self, values):
        self.cells = values

    @rule(i=st.integers(0, N - 1), v=mv)
    def set_one_cell(self, i, v):
        self.cells[i] = v

    @rule(values=st.lists(temp_c, min_size=M, max_size=M))
    def set_temps(self, values):
        self.temps = values

    @rule(i=st.integers(0, M - 1), bad=st.booleans())
    def thermistor(self, i, bad):
        self.therm_bad[i] = bad

    @rule(ma=st.one_of(st.integers(-600000, 600000), st.sampled_from([0, 1000, -1000, 50000, -100000])))
    def set_current(self, ma):
        self.current_ma = ma

    @rule()
    def toggle_enable(self):
        self.enable = not self.enable

    @rule()
    def weld(self):
        self.welded = True

    @rule(on=st.booleans())
    def front_end(self, on):
        self.stale = not on

    @rule()
    def clear(self):
        self.clear_next = True

    @rule(n=st.integers(1, 40))
    def run(self, n):
        for _ in range(n):
            self.tick()

    def tick(self):
        cells_raw = [min(65535, max(0, v * 10)) for v in self.cells]
        temps_raw = [4095 if bad else int(round(float(ntc_counts(t)))) for t, bad in zip(self.temps, self.therm_bad)]
        pack_mv = sum(self.cells)
        closed = (self.outputs & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS) or (self.outputs & (OUT_NEG | OUT_PRE)) == (OUT_NEG | OUT_PRE)
        feedback = self.outputs & 7
        if self.welded:
            feedback |= OUT_NEG | OUT_POS
        self.pulses += 7
        flags = (1 if self.stale else 0) | (4 if self.clear_next else 0)
        self.clear_next = False
        act = self.link.exchange(flags, self.k, self.k * 100, cells_raw, temps_raw,
                                 self.current_ma // 10, pack_mv // 10, pack_mv // 10 if closed else 0,
                                 2000, 2000, self.pulses, feedback | (frames.IN_ENABLE if self.enable else 0))
        self.k += 1
        if not self.stale:
            self.seen_cells = list(self.cells)
            valid = [t for t, bad in zip(self.temps, self.therm_bad) if not bad]
            if valid:
                self.seen_tmin, self.seen_tmax = min(valid), max(valid)
        self.check(act)
        self.outputs = act.outputs

    def check(self, act):
        assert not act.flags & 1, "the firmware caught an internal error: " + self.link._read_log()
        active = [i for i in range(len(self.names)) if act.faults >> i & 1]
        critical = [self.names[i] for i in active if self.sev[i] == 3]
        if critical:
            assert act.outputs & (OUT_NEG | OUT_PRE | OUT_POS) == 0, f"contactors {act.outputs:#x} with {critical}"
        if act.ccl_ma > 0:
            assert self.seen_cells is not None
            assert max(self.seen_cells) < self.trip["CELL_OV"], f"charging allowed at {max(self.seen_cells)} mV"
            assert self.seen_tmin is None or self.seen_tmin > self.trip["UT_CHG"] / 10 - MARGIN_C, f"charging allowed at {self.seen_tmin} degC"
        for i in range(N):
            if act.balance >> i & 1:
                assert self.seen_cells[i] >= self.floor, f"bleeding cell {i} at {self.seen_cells[i]} mV"
                assert self.seen_tmax < self.bal_max_c + MARGIN_C, f"bleeding at {self.seen_tmax} degC"
        # fault bits against the event record
        raised = act.faults & ~self.faults
        for i in range(len(self.names)):
            if raised >> i & 1:
                self.pending[i] = 0
        for _t, code, arg, _v in act.events:
            if code == frames.EV_FAULT_SET:
                assert arg in self.pending, f"event claims {self.names[arg]} raised, telemetry never showed it"
                del self.pending[arg]
        for i in list(self.pending):
            self.pending[i] += 1
            assert self.pending[i] <= 8, f"{self.names[i]} raised without an event"
        self.faults = act.faults

    @invariant()
    def events_keep_up(self):
        assert all(w <= 8 for w in self.pending.values())


Protection.TestCase.settings = settings(max_examples=500, stateful_step_count=12, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
TestProtection = Protection.TestCase
