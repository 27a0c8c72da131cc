"""The first day of the month on 32 bits (`make soak32` runs all 30 days):
the household profile with a grid event, 1 s ticks, the clock crossing
the ticks wrap in its first minute, persistence and the console on, the
firmware from bytecode .mpy: every tick runs, no MemoryError, no internal
error, and the heap's high-water mark is reported."""
from host_tools.mp32 import soak


def test_first_day_of_the_month_on_32_bits():
    r = soak.soak(days=1.0)
    assert "error" not in r, r
    assert r["ticks"] == r["recorded_ticks"] == 86401, r
    assert r["internal_error"] == 0, r
    assert r["grid_events"] == 1 and r["grid_active_ticks"] > 0, r
    print("heap high-water mark", r["peak"], "held at most", r["live_max"])
    assert 0 < r["live_max"] <= r["peak"]
