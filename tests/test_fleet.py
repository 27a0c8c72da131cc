"""A small fleet (`bmsctl fleet`, the full one in README): 4 household
packs, each the firmware under the unix port with its own plant, on a
LocalCluster; an aggregator's two grid events. The plants' true SOC never
goes below a pack's reserve while it exports, no interval delivers more
than was asked, and every pack that did not serve says why. Then the fleet
file's checks."""
import csv

import pytest

from host_tools import fleet
from host_tools.firmware import ROOT

SMALL = ROOT / "scenarios" / "fleet" / "small.toml"


def test_small_fleet(tmp_path, capsys):
    fl = fleet.load(SMALL)
    houses = fleet.households(fl)
    assert sum(bool(h.fault) for h in houses) >= 1 and sum(bool(h.soc_error) for h in houses) >= 1
    rc = fleet.main(fl, tmp_path, workers=2)
    out = capsys.readouterr().out
    print(out)
    assert rc == 0, out
    packs = list(csv.DictReader(open(tmp_path / "fleet_packs.csv")))
    assert len(packs) == 4 and all(p["lost"] == "" for p in packs)
    assert [int(p["reserve_violations"]) for p in packs] == [0, 0, 0, 0]
    rows = list(csv.DictReader(open(tmp_path / "fleet_intervals.csv")))
    req = [float(r["requested_kw"]) for r in rows]
    got = [float(r["delivered_kw"]) for r in rows]
    assert sum(req) > 0 and sum(got) > 0
    for r, g in zip(req, got):
        assert g <= r * 1.02 + 0.01, (r, g)
    # every pack asked that did not serve an event is listed with the firmware's reason
    plan = fleet.dispatch(fl, houses)
    events = list(csv.DictReader(open(tmp_path / "fleet_events.csv")))
    optouts = list(csv.DictReader(open(tmp_path / "fleet_optouts.csv")))
    assert len(events) == len(fl.events)
    for ei, ev in enumerate(events):
        asked = sum(1 for s in plan.values() if any(e == ei for e, *_ in s))
        mine = [o for o in optouts if int(o["event"]) == ei]
        assert int(ev["served"]) + int(ev["opted_out"]) == asked and len(mine) == int(ev["opted_out"])
        assert all(o["why"] for o in mine)
    faulted = [h.index for h in houses if h.fault and h.fault_at_h < fl.events[0].at_h]
    assert faulted and all(any(int(o["pack"]) == i and o["event"] == "0" for o in optouts) for i in faulted)
    assert (tmp_path / "fleet.png").stat().st_size > 1000


@pytest.mark.parametrize("raw, field", [
    ({"fleet": {"packs": 0}}, "fleet.packs"),
    ({"fleet": {"pack": 3}}, "fleet.pack"),
    ({"fleet": {"hours": "2 h"}}, "fleet.hours"),
    ({"fleet": {"tick_s": 0.01}}, "fleet.tick_s"),
    ({"fleets": {}}, "fleets"),
    ({"fleet": {"hours": 4}, "event": [{"at_h": 1, "duration_h": 1, "notice_h": 0}]}, "event[0].power_kw"),
    ({"fleet": {"hours": 4}, "event": [{"at_h": 1, "duration_h": 1, "notice_h": 2, "power_kw": 1}]}, "event[0].notice_h"),
    ({"fleet": {"hours": 4}, "event": [{"at_h": 3, "duration_h": 2, "notice_h": 0, "power_kw": 1}]}, "event[0].duration_h"),
    ({"fleet": {"hours": 9}, "event": [{"at_h": 1, "duration_h": 2, "notice_h": 0, "power_kw": 1},
                                       {"at_h": 2, "duration_h": 1, "notice_h": 0, "power_kw": 1}]}, "event at 2"),
])
def test_fleet_file_errors_name_the_field(raw, field):
    with pytest.raises(fleet.FleetError, match=field.replace("[", r"\[").replace("]", r"\]")):
        fleet.parse(raw, "f.toml")


def test_fleet_events_and_shares():
    fl = fleet.Fleet(packs=50, hours=24, seed=3)
    evs = fleet.seed_events(fl)
    assert evs and all(1 <= e.duration_h <= 5 or e.at_h + e.duration_h >= 24 - 1e-6 for e in evs)
    assert {e.notice_h for e in evs} <= {4.0, 1.0, 0.25, 0.0}
    fl.events = evs
    houses = fleet.households(fl)
    plan = fleet.dispatch(fl, houses)
    for ei, ev in enumerate(evs):
        shares = [w for s in plan.values() for e, _, w, _ in s if e == ei]
        assert sum(shares) <= ev.power_kw * 1000 + len(shares)  # rounding
    byi = {h.index: h for h in houses}
    assert all(w <= byi[i].max_power_w for i, s in plan.items() for _, _, w, _ in s)
