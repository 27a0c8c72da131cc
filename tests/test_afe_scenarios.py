"""The whole firmware through each front end's chip model instead of the
sim HAL: the plant's values go into the model, the board HAL's real driver
reads them back, and the plant sees what the modelled hardware does
(contactor pins, PWM, heater pin, the cells the chip bleeds).

`make test` runs scenarios/afe_short.toml (the default scenario's pack and
profile, shortened); `make afe` runs the full default scenario through all
three (about 50-80 s each here)."""
import pytest

from host_tools import report, scenario
from host_tools.sim import Simulation

from conftest import SCENARIOS


@pytest.mark.parametrize("afe", ["bq76952", "ltc6813", "adc"])
def test_short_default_profile_through_chip_model(afe):
    sc = scenario.load(SCENARIOS / "afe_short.toml")
    res = Simulation(sc, afe=afe).run()
    verdicts = report.check(res)
    assert verdicts
    failed = [f"#{v.index} {v.text}: {v.detail}" for v in verdicts if not v.ok]
    assert not failed, "\n".join(failed) + "\n" + report.summary(res)
    assert [e[3] for e in res.step_ends] == ["charger", "duration", "timeout"]
    # the chip (or the bleed pins) really bled cells in the plant
    assert res.balance_energy_wh > 0.1, report.summary(res)
    assert res.faults_raised() == []


def test_short_between_scans_is_the_chips_catch():
    # campaign-style injection through the BQ76952 model: only the chip's own
    # SCD (the second layer) can see a 2 ms short between two 100 ms scans
    sc = scenario.load(SCENARIOS / "short_pulse_bq.toml")
    res = Simulation(sc, afe="bq76952").run()
    verdicts = report.check(res)
    assert verdicts and all(v.ok for v in verdicts), "\n".join(f"{v.text}: {v.detail}" for v in verdicts)
    raised = [n for _, n in res.faults_raised()]
    assert "FE_SCD" in raised and "SHORT_CIRCUIT" not in raised
    # through the plain sim HAL (no chip) the same short goes unseen
    plain = Simulation(sc).run()
    assert "FE_SCD" not in [n for _, n in plain.faults_raised()] and "SHORT_CIRCUIT" not in [n for _, n in plain.faults_raised()]
