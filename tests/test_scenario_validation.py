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
    ("out of range quantity", variant('ambient = "25 degC"', 'ambient = "500 degC"'), "thermal.ambient: '500 degC' is out of range"),
    ("unknown fault", GOOD + '\n[[fault]]\nkind = "gremlins"\nat = "1 s"\n', "fault[0].kind: unknown value 'gremlins'"),
    ("unknown field", variant("seed = 1", "seed = 1\nspeed = 3"), "speed: unknown field"),
    ("unknown step", variant('step = "rest"', 'step = "nap"'), "profile[1].step: unknown value 'nap'"),
    ("time as current", variant('current = "1 C"', 'current = "1 h"'), "profile[2].current: expected a current"),
    ("bad toml", "name = ", "not valid TOML"),
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
