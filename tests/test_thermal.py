"""Thermal management scenarios (issue: coolant pump control, coolant faults,
thermal derating): each scenario file carries its expectations."""
import pytest

from host_tools import report, scenario
from host_tools.sim import run

from conftest import SCENARIOS

FILES = sorted(p.name for p in SCENARIOS.glob("thermal_*.toml"))


def test_the_five_situations_are_covered():
    for name in ("hot_day", "seized_pump", "slow_leak", "cold_morning", "coolant_sensor", "pump_energy", "cooling_loss"):
        assert f"thermal_{name}.toml" in FILES


@pytest.mark.parametrize("name", FILES)
def test_thermal_scenario(name):
    sc = scenario.load(SCENARIOS / name)
    res = run(sc)
    verdicts = report.check(res)
    assert verdicts
    failed = [f"#{v.index} {v.text}: {v.detail}" for v in verdicts if not v.ok]
    assert not failed, "\n".join(failed) + "\n" + report.summary(res)
    print("\n".join(report.thermal_figures(res)))
