"""The board runner (firmware/bms/runner.py) under MicroPython, with models
of the clock (wrapping at 2**30), the watchdog and machine.reset."""
import json
import subprocess

import pytest

from host_tools.firmware import FIRMWARE, micropython_binary
from conftest import ROOT

CHECK = ROOT / "tests" / "mp_runner_check.py"


def run(mode):
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), mode], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_fixed_period_without_drift_across_the_tick_wrap():
    out = run("ok")
    starts = out["starts"]
    assert out["ticks"] == 60 and out["overruns"] == 0
    # every tick starts exactly one period after the previous one, although
    # each tick takes a different time, and across the 2**30 wrap
    diffs = [((b - a) & 0x3FFFFFFF) for a, b in zip(starts, starts[1:])]
    assert diffs == [100] * 59
    assert any(b < a for a, b in zip(starts, starts[1:]))  # the clock wrapped
    assert out["feeds"] == 60 and out["resets"] == 0
    assert out["console_calls"] == 60  # the console served once per cycle
    assert out["outputs_after"] == 5  # healthy pack: main contactors closed


def test_internal_error_stops_feeding_the_watchdog_with_outputs_safe():
    out = run("error")
    assert out["internal_error"] == 1
    assert out["feeds"] == 29  # fed for the 29 clean ticks, never after the error
    assert out["outputs_after"] == 0 and out["balance_after"] == 0


@pytest.mark.parametrize("mode", ["ctrl-c", "console-ctrl-c"])
def test_ctrl_c_goes_safe_then_gives_the_repl(mode):
    # Ctrl-C inside the tick or arriving on the console between ticks: the
    # outputs go safe (and are written out), then the REPL, no reset.
    out = run(mode)
    assert out["err"] == "KeyboardInterrupt"
    assert out["last_written"][-2:] == [-1, 0]  # HAL safe(), then the safe outputs written
    assert out["outputs_after"] == 0 and out["resets"] == 0
    assert out["max_closed"] & 5 == 5  # the contactors had closed before


@pytest.mark.parametrize("mode,resets", [("prod-interrupt", 1), ("prod-maintenance", 0)])
def test_production_resets_unless_maintenance(mode, resets):
    # production mode: an interrupt that is not the authenticated `repl`
    # ends in the safe state and a reset, never the REPL; `repl` gives it
    out = run(mode)
    assert out["last_written"][-2:] == [-1, 0] and out["outputs_after"] == 0
    assert out["resets"] == resets, out
