"""Differential proof on the official 32-bit MicroPython: the sensor frames
recorded on the unix port, replayed from a file into the firmware on 32
bits, must give byte-identical actuator frames tick by tick (the start of
each long scenario here, the short ones whole; `make replay32` replays them whole)."""
from __future__ import annotations

import pytest

from host_tools.mp32 import replay
from tests.conftest import SCENARIOS

# The start of the long scenarios, whole the short ones: the fault
# scenario through its CELL_OV trip and the contactors opening (3,647
# ticks, across the ticks wrap), and both wrap scenarios.
CASES = [("default", 1500), ("thermal_cooling_loss", 1500), ("grid_reserve", 1500), ("charger_no_stop", None),
         ("wrap32_precharge", None), ("wrap32_grid", None)]


@pytest.mark.parametrize("name,ticks", CASES)
def test_actuator_frames_identical_on_32_bits(name, ticks):
    r = replay.replay(SCENARIOS / f"{name}.toml", max_ticks=ticks)
    assert r["ticks"] == ticks if ticks else r["ticks"] > 300
    assert r["bytes"] > 0
    assert r["difference"] is None, r["difference"]


def test_a_difference_names_tick_field_and_both_values():
    _cfg, rec = replay.record(SCENARIOS / "default.toml", max_ticks=20)
    want = [a for _, a in rec]
    got = list(want)
    bad = bytearray(got[7])
    bad[14] ^= 1  # low byte of ccl_ma
    got[7] = bytes(bad)
    msg = replay.first_difference(want, got)
    old = replay.fields(want[7])["ccl_ma"]
    assert msg == f"tick 7: field ccl_ma: unix port {old!r}, 32-bit {old ^ 1!r}"
    assert replay.first_difference(want, want[:-1]) == "tick 19: unix port answered 20 frames, 32-bit 19"
