"""0 allocations per tick on the real 31-bit integer model: the firmware on
the 32-bit MicroPython with every tick inside micropython.heap_lock(), at
the extremes the configuration accepts (256 cells and 64 sensors, 2,000
Ah, 665 A limits whose over-current trips reach the 1 kA maximum, a 1e6
mA/s ramp, readings at the i32 extremes), ticks of 10 ms, 100 ms and 1 s
with a 10 s stall, the clock crossing the 2**30 wrap, with faults,
balancing, grid events and the contactors opening and closing again
(host_tools/mp32/lock.py). Any big int or other allocation in a tick is a
MemoryError there (or an internal error, when the app catches it)."""
from __future__ import annotations

import json
import shutil

import pytest

from host_tools.firmware import FIRMWARE
from host_tools.mp32 import node
from tests.conftest import ROOT

LOCK = ROOT / "host_tools" / "mp32" / "lock.py"
# cells, temps, tick_ms, locked ticks: 10,000 in all
RUNS = [(256, 64, 100, 1200), (16, 4, 10, 5000), (16, 4, 1000, 3800)]


def lock_run(cells, temps, tick_ms, n, firmware=FIRMWARE):
    p = node.run(LOCK, ("ref", cells, temps, tick_ms, n), puts=((firmware, "/fw"),), heap=1 << 20, timeout=300)
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("cells,temps,tick_ms,n", RUNS)
def test_every_tick_allocation_free_on_32_bits(cells, temps, tick_ms, n):
    out = lock_run(cells, temps, tick_ms, n)
    assert out["error"] is None, out
    assert out["internal_error"] == 0 and out["errors"] == 0, out
    assert out["locked_ticks"] == n
    assert out["wraps"] == 1, out  # the clock crossed 2**30 while locked
    # the interesting paths ran locked, not just idle ticks
    assert out["balancing_ticks"] > 0 and out["open_ticks"] > 0 and out["grid_ticks"] > 0, out
    assert out["grid_events"] >= 1, out
    for name in ("CELL_OV", "OC_DSG", "SHORT_CIRCUIT"):
        assert name in out["faults_seen"], out


def test_the_32_bit_run_catches_a_big_int(tmp_path):
    # The limit ramp as it was (ramp x dt in one product: 1e6 mA/s x the
    # 10 s stall is a big int on 32 bits) must fail the run.
    fw = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, fw)
    lim = fw / "bms" / "limits.py"
    src = lim.read_text()
    new = "        step = (self.ramp // 1000) * dt + (self.ramp % 1000) * dt // 1000\n"
    assert new in src
    lim.write_text(src.replace(new, "        step = self.ramp * dt // 1000\n"))
    out = lock_run(16, 4, 100, 300, firmware=fw)
    assert out["error"] is not None or out["internal_error"] == 1, out
