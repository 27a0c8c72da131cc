"""Latched faults stay until `clear` and the cause is gone; then the
contactors precharge and close again. Driven through the sim HAL."""
from host_tools import frames
from host_tools.link import FirmwareLink

N, M = 4, 2
CONFIG = {"board": "sim", "hal": "sim", "cells": N, "temps": M, "capacity_mah": 100000, "chemistry": "LFP"}


class Pack:
    def __init__(self, link):
        self.link, self.k, self.outputs = link, 0, 0
        self.names = link.hello["faults"]
        self.events = []

    def tick(self, mv, clear=False, n=1):
        for _ in range(n):
            pack = sum(mv) // 10
            closed = self.outputs & 1 and self.outputs & 6
            act = self.link.exchange(4 if clear else 0, self.k, self.k * 100, [v * 10 + self.k % 3 for v in mv], [2048] * M,
                                     0, pack, pack if closed else 0, 2048, 2048, 0, (self.outputs & 7) | frames.IN_ENABLE)
            self.k += 1
            self.outputs = act.outputs
            self.events += act.events
            clear = False
        return act

    def active(self, act):
        return {self.names[i] for i in range(len(self.names)) if act.faults >> i & 1}


def test_latched_over_voltage_needs_clear_and_a_gone_cause():
    with FirmwareLink(CONFIG) as link:
        p = Pack(link)
        act = p.tick([3300] * N, n=20)
        assert act.outputs == 5  # closed after precharge
        act = p.tick([3300, 3300, 3700, 3300], n=10)  # 1 s over 3650 mV
        assert "CELL_OV_CRIT" in p.active(act) and act.outputs == 0
        # clear while the cause persists: nothing changes
        act = p.tick([3300, 3300, 3700, 3300], clear=True, n=5)
        assert "CELL_OV_CRIT" in p.active(act) and act.outputs == 0
        # cause gone (below the 3450 mV recovery) but no clear: still latched
        act = p.tick([3300] * N, n=80)
        assert "CELL_OV_CRIT" in p.active(act) and act.outputs == 0
        # clear now: the fault goes and the contactors close again
        act = p.tick([3300] * N, clear=True, n=20)
        assert "CELL_OV_CRIT" not in p.active(act)
        assert act.outputs == 5
        crit = p.names.index("CELL_OV_CRIT")
        codes = [(c, a) for _t, c, a, _v in p.events]
        assert (frames.EV_FAULT_SET, crit) in codes and (frames.EV_FAULT_CLEAR, crit) in codes
