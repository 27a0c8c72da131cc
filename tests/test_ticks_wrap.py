"""The firmware's clock arithmetic (bms/ticks.py) behaves as a board's
time.ticks_* on every port: checked against the 32-bit port's native
ticks (which wrap at 2**30), and the wrap scenarios cross it with the
contactor timers, a grid deadline and the state-record cadence in flight
(their 32-bit replays: tests/test_mp32_replay.py)."""
from __future__ import annotations

import pytest

from host_tools import report, scenario
from host_tools.firmware import FIRMWARE
from host_tools.mp32 import node
from host_tools.sim import Simulation
from tests.conftest import ROOT, SCENARIOS, mp_run


def test_ticks_equal_the_native_32_bit_ticks_and_never_allocate():
    p = node.run(ROOT / "tests" / "mp32_ticks_check.py", puts=((FIRMWARE, "/fw"),), heap=65536, timeout=120)
    assert p.stdout.strip().startswith("ok "), p.stdout + p.stderr
    assert int(p.stdout.split()[1]) > 20000


def test_ticks_on_the_unix_port_wrap_at_2_30():
    # the 64-bit port's own ticks_diff does not wrap there; bms.ticks does
    p = mp_run("import time\nfrom bms import ticks\n"
               "print(time.ticks_diff(0, 2**30 - 1000), ticks.diff(0, 2**30 - 1000), ticks.add(2**30 - 1000, 1500),"
               " ticks.diff(2**30 - 1000, 0), ticks.wrap(2**30 + 5))")
    assert p.returncode == 0, p.stderr
    native, d, a, back, w = map(int, p.stdout.split())
    assert native == -1073740824  # why bms.ticks exists
    assert (d, a, back, w) == (1000, 500, -1000, 5)


@pytest.mark.parametrize("name", ["wrap32_precharge.toml", "wrap32_grid.toml"])
def test_wrap_scenarios_meet_their_expectations(name):
    sc = scenario.load(SCENARIOS / name)
    res = Simulation(sc).run()
    verdicts = report.check(res)
    failed = [f"#{v.index} {v.text}: {v.detail}" for v in verdicts if not v.ok]
    assert verdicts and not failed, "\n".join(failed) + "\n" + report.summary(res)
    assert sc.clock_start_ms < 2**30 < sc.clock_start_ms + res.sim_s * 1000  # it crossed the wrap
