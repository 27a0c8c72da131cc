"""The SOC and grid stages under the MicroPython unix port (tests/mp_soc_check.py
drives them through a State with chosen signals)."""
import json
import subprocess

import pytest

from host_tools.firmware import FIRMWARE, micropython_binary
from conftest import ROOT


@pytest.fixture(scope="module")
def out():
    r = subprocess.run([micropython_binary(), str(ROOT / "tests" / "mp_soc_check.py"), str(FIRMWARE)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_counting_with_the_charge_efficiency(out):
    c = out["count"]
    assert c["boot_soc"] == 3000  # 3214 mV is 30 % on the firmware's LFP table
    # 50 A for 1 h at 99.8 %: 49.9 Ah onto 20 % of 100 Ah
    assert c["q_mah"] == 69900 and c["after"] == 6990
    assert 0 <= c["rem"] < 3600000
    assert c["energy_in_wh"] == 514 * 500 // 100  # 51.424 V x 50 A x 1 h, counted in 0.1 V x 0.1 A steps


def test_cut_off_adds_the_surface_soc_lag(out):
    g = out["lag"]
    # 1 h at 0.8C: both lags settled at -0.8 x (675 + 1097) = -1417.6 (0.01 %)
    assert -1418 <= g["lag_1s"] <= -1417 and -1418 <= g["lag_10ms"] <= -1417
    # the empty sync: the table's SOC of 2800 mV (319) plus the lag
    table = 250 + (2800 - 2764) * 250 // (2893 - 2764)
    assert g["synced"][0] == 2 and table + 1416 <= g["synced"][1] <= table + 1418
    # 150 s at rest: the fast lag is gone (10 tau), the slow one at
    # exp(-150/314) = 62 % of its 877.6
    assert -560 <= g["rest150"] <= -530


def test_end_of_charge_synchronises_to_100(out):
    f = out["full"]
    assert f["before"] < 10000  # 15 s of taper is not yet the end
    assert f["after"] == 10000 and f["sync"] == 1
    assert f["events"][-1] == [1, 10000]


def test_cut_off_synchronises_and_reestimates_capacity(out):
    e = out["empty"]
    assert e["counted"] == 2000  # 100 % - 80 Ah counted
    # 2800 mV on the table: 2.5 % + (2800 - 2764) / (2893 - 2764) x 2.5 %
    assert e["synced"] == [2, 250 + (2800 - 2764) * 250 // (2893 - 2764)] and e["sync"] == 2
    assert e["synced"][1] - 3 <= e["after"] <= e["synced"][1]  # then 0.5 s more of 80 A
    # 80 Ah (+ the taper's charge) over 96.8 % of SOC: ~82.6 Ah; a 96.8 % span
    # moves the estimate 72 % of the way from 100 Ah: ~87.5 Ah
    assert 87300 <= e["capacity"] <= 87700
    assert e["cap_events"] == [[0, e["capacity"]]]


def test_ocv_correction_only_on_the_knee_after_rest(out):
    o = out["ocv"]
    assert 5000 <= o["plateau"] <= 5010  # the plateau reading changes nothing (only the counted 0.1 Ah)
    assert o["early"] == 3000  # before 30 min of rest nothing
    assert o["knee"] == 1500 and o["sync"] == 3  # the lowest cell's OCV, 15 %


def test_cold_leaves_part_of_the_charge_unusable(out):
    t = out["temp"]
    assert t["warm_usable"] == 50000
    assert t["cold_usable"] == 50000 - 22000  # 78 % usable at -10 degC (LFP table)


def test_a_2000_ah_pack_at_1000_a_stays_in_31_bits(out):
    assert out["big"]["worst"] < 2**30
    assert out["big"]["soc"] == 0


def test_grid_event_arguments_and_deadline(out):
    g = out["grid_deadline"]
    errs = g["errors"]
    assert all(e is not None for e in errs), errs
    assert "power 0 W" in errs[0] and "power 20000 W" in errs[1]
    assert "duration 0 s" in errs[2] and "duration 100000 s" in errs[3]
    assert "'1000'" in errs[4]
    assert "not allowed" in errs[5]
    assert "already running" in g["busy"]
    assert g["active"] == 0 and g["reason"] == 1 and g["end_ms"] == 600000
    # 2 kW for 10 min = 333 Wh (the count works in 0.1 V x 0.1 A steps)
    assert 330000 <= g["mwh"] <= 333400
    assert g["ends"] == [[1, g["mwh"]]]


def test_grid_event_ends_at_the_reserve_and_is_refused_below_it(out):
    r = out["grid_reserve"]
    assert r["asked_ma"] == 2000 * 10000 // 520  # 2 kW at 52.0 V
    assert r["active"] == 0 and r["reason"] == 2
    assert r["total_wh"] == 332
    assert "at or below the reserve 30.00 %" in out["grid_below"]


def test_voltage_floor_rearms_only_while_charging(out):
    r = out["vfloor_rearm"]
    assert r["tripped"] == 1
    assert r["relaxed"] == 1  # 10 min at rest 86 mV above the floor: still refused
    assert r["early"] == 1 and r["charged"] == 0  # 5 s of charging above it re-arms


def test_soc_tick_allocates_nothing(out):
    lk = out["lock"]
    assert lk["error"] is None
    # the locked run went through a full sync and an OCV correction
    assert [1, 10000] in lk["syncs"] and [3, 1500] in lk["syncs"]


def test_grid_reserve_keeps_a_margin_for_the_counted_soc(out):
    msg, floor = out["grid_margin_unlearned"]
    assert floor == 3000 + 100 + (10000 - 3300) * 100 // 1000  # 1 % + 10 % of the 67 % counted since the sync
    assert "37.70 %" in msg
    msg, floor = out["grid_margin"]
    assert floor == 3000 + 100 + (10000 - 3200) * 30 // 1000  # 3 % once the capacity has been estimated
    assert "33.04 %" in msg
    msg, floor = out["grid_unsynced"]
    assert floor == 4000 and "40.00 %" in msg  # no synchronisation since boot: 10 % margin


def test_tick_with_balancing_windows_allocates_nothing():
    # the whole App tick (tests/test_heap_lock.py's harness) with the
    # balancing measurement windows on
    from conftest import ROOT as root
    r = subprocess.run([micropython_binary(), str(root / "host_tools" / "mp" / "tick_bench.py"), str(FIRMWARE), "16",
                        "lock", "viper", "windows"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    o = json.loads(r.stdout.strip().splitlines()[-1])
    assert o["error"] is None and o["internal_error"] == 0 and o["ranges_bad"] == [], o
    assert o["balancing_ticks"] > 0 and o["locked_ticks"] == 1200


def test_grid_cancel(out):
    c = out["grid_cancel"]
    assert c == {"first": True, "second": False, "reason": 3, "active": 0, "ma": 0}


def test_table_interpolation_bisects_as_the_linear_search_did():
    """The tables' lookup (kernels.interp, viper, and its twin) finds its
    segment by bisection; the answer must be the linear scan's for every x
    on rising tables, repeated points (a plateau in the OCV's mV) and
    falling ys included, on the 16-bit arrays the config builds ('h' and
    'H'). Under MicroPython, as on a board."""
    from conftest import mp_run
    r = mp_run("""
import random
from array import array
from bms import kernels, kernels_ref

def linear(xs, ys, n, x):
    if x <= xs[0]:
        return ys[0]
    if x >= xs[n - 1]:
        return ys[n - 1]
    j = 0
    while xs[j + 1] < x:
        j += 1
    return ys[j] + (x - xs[j]) * (ys[j + 1] - ys[j]) // (xs[j + 1] - xs[j])

random.seed(7)
checked = 0
for trial in range(300):
    n = random.randint(2, 30)
    xs = [random.randint(-50, 50)]
    for _ in range(n - 1):
        xs.append(xs[-1] + random.choice((0, 0, 1, 3, 17, 250)))
    if xs[-1] == xs[0]:
        xs[-1] += 1
    if trial % 3 == 0:
        ys = [random.randint(0, 5000) for _ in range(n)]  # as the OCV's mV ('H')
        ya = array("H", ys)
    else:
        ys = [random.randint(-10000, 10000) for _ in range(n)]
        ya = array("h", ys)
    xa = array("h", xs)
    for x in range(xs[0] - 3, xs[-1] + 4):
        want = linear(xs, ys, n, x)
        assert kernels_ref.interp(xs, ys, n, x) == want, (xs, ys, x)
        assert kernels_ref.interp(xa, ya, n, x) == want, (xs, ys, x)
        assert kernels.interp(xa, ya, n, x) == want, (xs, ys, x, kernels.interp(xa, ya, n, x))
        checked += 1
print(checked)
""")
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(r.stdout.split()[-1]) > 10000
