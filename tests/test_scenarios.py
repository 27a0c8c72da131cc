"""Full firmware against the plant: the default scenario and fault injection."""
import pytest

from host_tools import report, scenario
from host_tools.sim import Simulation

from conftest import SCENARIOS


def run_checked(name):
    sc = scenario.load(SCENARIOS / name)
    res = Simulation(sc).run()
    verdicts = report.check(res)
    assert verdicts, "scenario has no expectations"
    failed = [f"#{v.index} {v.text}: {v.detail}" for v in verdicts if not v.ok]
    assert not failed, "\n".join(failed) + "\n" + report.summary(res)
    return res


def test_default_scenario_meets_its_expectations():
    res = run_checked("default.toml")
    # the pipeline really ran: charged to full, balanced, stopped at the cut-off
    assert res.soc_max.max() > 0.95
    assert (res.balancing > 0).any()
    assert [e[3] for e in res.step_ends] == ["charger", "duration", "firmware"]


def test_charger_no_stop_opens_contactors_within_trip_delay_plus_one_tick():
    res = run_checked("charger_no_stop.toml")
    t_cross, t_det, t_open, delay_s = report.reaction(res, "CELL_OV_CRIT")
    tick = res.scenario.tick_s
    assert t_det is not None and t_open is not None
    assert t_open - t_cross <= delay_s + tick + 1e-9
    # nothing closes again while the latched critical fault stays
    k_open = int(round(t_open / tick))
    assert not (res.outputs[k_open:] & 4).any()
    # the run crossed the 2**30 ms wrap of ticks_ms on the firmware side
    assert res.scenario.clock_start_ms + res.sim_s * 1000 > 2**30
