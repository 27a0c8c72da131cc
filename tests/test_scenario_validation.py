"""Bad scenario files are rejected with a message naming the field."""
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools import scenario

from conftest import SCENARIOS

BMSCTL = str(Path(sys.executable).parent / "bmsctl")
GOOD = (SCENARIOS / "default.toml").read_text()


def variant(old, new):
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


CASES = [
    ("missing field", variant('capacity = "100 Ah"\n', ""), "pack.capacity: missing"),
    ("wrong unit", variant('capacity = "100 Ah"', 'capacity = "100 V"'), "pack.capacity: expected a charge"),
    ("bare number", variant('capacity = "100 Ah"', "capacity = 100"), "pack.capacity: expected a quantity with its unit"),
    ("out of range", variant("cells = 16", "cells = 0"), "pack.cells: 0 is out of range"),
    ("diffusion not a bool", variant("cells = 16", 'cells = 16\ndiffusion = "yes"'),
     "pack.diffusion: expected true or false, got 'yes'"),
    ("out of range quantity", variant('ambient = "25 degC"', 'ambient = "500 degC"'), "thermal.ambient: '500 degC' is out of range"),
    ("unknown fault", GOOD + '\n[[fault]]\nkind = "gremlins"\nat = "1 s"\n', "fault[0].kind: unknown value 'gremlins'"),
    ("unknown field", variant("seed = 1", "seed = 1\nspeed = 3"), "speed: unknown field"),
    ("unknown step", variant('step = "rest"', 'step = "nap"'), "profile[1].step: unknown value 'nap'"),
    ("time as current", variant('current = "1 C"', 'current = "1 h"'), "profile[2].current: expected a current"),
    ("bad toml", "name = ", "not valid TOML"),
    # the firmware's starting belief and the current sensor's error
    ("soc error out of range", variant("[thermal]", '[estimate]\nsoc_error = "-45 %"\n\n[thermal]'),
     "estimate.soc_error: '-45 %' is out of range -0.4..0.4"),
    ("capacity error out of range", variant("[thermal]", '[estimate]\ncapacity_error = "35 %"\n\n[thermal]'),
     "estimate.capacity_error: '35 %' is out of range -0.3..0.3"),
    ("estimate unknown field", variant("[thermal]", '[estimate]\nsoc = "5 %"\n\n[thermal]'), "estimate.soc: unknown field"),
    ("current offset out of range", variant("[sensors]", '[sensors]\ncurrent_offset = "20 A"'),
     "sensors.current_offset: '20 A' is out of range"),
    ("current gain error unit", variant("[sensors]", '[sensors]\ncurrent_gain_error = "2 A"'),
     "sensors.current_gain_error: expected a fraction"),
    # intermittent patterns
    ("pattern on a physical fault", GOOD + '\n[[fault]]\nkind = "load_short"\nat = "1 s"\non = "1 s"\nperiod = "2 s"\n',
     "fault[0].on: kind 'load_short' cannot come and go"),
    ("on without period", GOOD + '\n[[fault]]\nkind = "thermistor_open"\nsensor = 0\nat = "1 s"\non = "300 ms"\n',
     "fault[0].period: missing"),
    ("on longer than period", GOOD + '\n[[fault]]\nkind = "thermistor_open"\nsensor = 0\nat = "1 s"\non = "3 s"\nperiod = "2 s"\n',
     "fault[0].on: 3 s must be shorter than the period 2 s"),
    ("on too short", GOOD + '\n[[fault]]\nkind = "open_sense_wire"\ncell = 1\nat = "1 s"\non = "1 ms"\nperiod = "2 s"\n',
     "fault[0].on: '1 ms' is out of range"),
    ("count without pattern", GOOD + '\n[[fault]]\nkind = "open_sense_wire"\ncell = 1\nat = "1 s"\ncount = 3\n',
     "fault[0].count: needs on and period"),
    ("missing share out of range", GOOD + '\n[[fault]]\nkind = "flow_meter_missing"\nat = "1 s"\nmissing = "150 %"\n',
     "fault[0].missing: '150 %' is out of range"),
]


@pytest.mark.parametrize("label,text,message", CASES, ids=[c[0] for c in CASES])
def test_rejected_with_field_named(tmp_path, label, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(scenario.ScenarioError) as ei:
        scenario.load(p)
    assert message in str(ei.value)
    assert str(p) in str(ei.value)


def test_cli_exits_non_zero_and_names_the_field(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(variant('capacity = "100 Ah"', 'capacity = "100 V"'))
    r = subprocess.run([BMSCTL, "sim", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "pack.capacity" in r.stderr and "100 V" in r.stderr
    assert r.stdout == ""  # nothing ran


def test_good_scenarios_load():
    for p in sorted(SCENARIOS.glob("*.toml")):
        sc = scenario.load(p)
        assert sc.profile and sc.expects, p


def test_firmware_rejects_a_bad_setting_before_running(tmp_path):
    # A scenario's [firmware] override that the firmware's own validation
    # refuses: the run stops before any tick, naming the setting.
    p = tmp_path / "badfw.toml"
    p.write_text(variant("[thermal]", "[firmware]\nbalance_stop_mv = 50\n\n[thermal]"))
    r = subprocess.run([BMSCTL, "sim", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "firmware rejected the configuration: config.balance_stop_mv" in r.stderr
    assert "simulated time" not in r.stdout


def test_estimate_and_pattern_values():
    sc = scenario.parse({"pack": {"chemistry": "LFP", "cells": 4, "capacity": "10 Ah", "initial_soc": "50 %"},
                         "thermal": {"ambient": "25 degC"}, "profile": [{"step": "rest", "duration": "1 s"}],
                         "estimate": {"soc_error": "+40 %", "capacity_error": "-30 %"},
                         "fault": [{"kind": "open_sense_wire", "cell": 1, "at": "2 s", "on": "300 ms",
                                    "period": "3 s", "count": 2}]})
    assert sc.firmware_soc == pytest.approx(0.9) and sc.estimate.capacity_error == pytest.approx(-0.3)
    from host_tools.injectors import present
    f = sc.faults[0]
    assert [present(f, t) for t in (1.9, 2.0, 2.2, 2.3, 5.0, 5.25, 8.0)] == [False, True, True, False, True, True, False]
