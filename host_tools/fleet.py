"""`bmsctl fleet`: a virtual power plant in simulated time.

N packs, each the unmodified firmware under the unix port in lock-step with
its own plant (one Simulation per pack, one Dask task per pack). Every pack
is a household drawn from the fleet's seed: its capacity, load, solar,
starting SOC, the owner's reserve, ageing (capacity fade, resistance
growth the firmware does not know of), sometimes a wrong saved SOC or a
fault during the day.

The aggregator dispatches the fleet's grid events as a VPP operator would:
each event has a fleet power target, a notice and a duration; at the notice
it shares the target among the packs pro rata to their rated energy (a
pack's share capped at its firmware's grid_max_power_w and
grid_max_duration_s) and each pack gets
`grid start W S` at the event's start. The aggregator plans open loop: it
does not re-dispatch during an event the power a pack fails to give (the
packs run independently, on different workers). The firmware alone decides
whether it serves: it refuses (reserve, SOC unknown, fault) or ends early
(reserve floor, voltage floor, discharge blocked), and that is the opt-out
reported with its reason.

Delivered energy is the plant's (what left the pack towards the grid),
summed per interval; reserve violations are ticks exporting while the
plant's true SOC was below that pack's reserve.
"""
from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from host_tools import scenario as S

from host_tools.tomlfile import read_toml
from host_tools.cluster import client, run_all, worker_cpu

CELLS = 16
NOMINAL_V = 3.2 * CELLS  # LFP, for the rated energy the aggregator shares by
FAULT_KINDS = ("thermistor_open", "frontend_comm_lost")


class FleetError(ValueError):
    pass


@dataclass
class Event:
    at_h: float  # start, hours from the run's start (00:00)
    duration_h: float
    notice_h: float  # announced this long before the start
    power_kw: float  # fleet target


@dataclass
class Fleet:
    packs: int = 4
    hours: float = 24.0
    seed: int = 1
    tick_s: float = 1.0
    interval_min: float = 15.0
    fault_share: float = 0.1
    wrong_soc_share: float = 0.15
    events: list = field(default_factory=list)


@dataclass
class Household:
    index: int
    seed: int
    capacity_ah: float  # rated (what the firmware is set for)
    fade: float  # true capacity = rated * (1 - fade)
    resistance_growth: float
    initial_soc: float
    soc_error: float  # saved SOC - true SOC
    reserve_cpct: int
    max_power_w: int
    max_duration_s: int  # the owner's grid_max_duration_s
    solar_peak_c: float
    load_day_c: float
    load_night_c: float
    fault: str  # "" or an injector kind
    fault_at_h: float


@dataclass
class PackJob:
    house: Household
    hours: float
    tick_s: float
    interval_s: float
    dispatch: list  # (event index, start s, W, duration s)


@dataclass
class PackOutcome:
    index: int
    delivered_wh: list  # per interval
    ends: list  # (event index or -1, t start, t end, reason, plant Wh)
    reserve_violations: int
    min_true_soc_exporting: float | None
    sim_s: float
    wall_s: float
    faults: str


# -- the fleet file ----------------------------------------------------------

_FLEET_KEYS = {"packs": (int, 1, 100000), "hours": (float, 0.1, 24 * 30), "seed": (int, 0, 2**32 - 1),
               "tick_s": (float, 0.1, 1.0), "interval_min": (float, 1, 240),
               "fault_share": (float, 0, 1), "wrong_soc_share": (float, 0, 1)}
_EVENT_KEYS = {"at_h": (float, 0, 24 * 30), "duration_h": (float, 1 / 60, 24), "notice_h": (float, 0, 48),
               "power_kw": (float, 0.001, 1e6)}


def _check(where: str, table: dict, keys: dict, out: dict) -> None:
    if not isinstance(table, dict):
        raise FleetError(f"{where}: must be a table")
    for k, v in table.items():
        if k not in keys:
            raise FleetError(f"{where}.{k}: unknown field (known: {', '.join(keys)})")
        typ, lo, hi = keys[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and not isinstance(v, int)):
            raise FleetError(f"{where}.{k}: must be {'an integer' if typ is int else 'a number'}, got {v!r}")
        if not lo <= v <= hi:
            raise FleetError(f"{where}.{k}: {v} is out of range [{lo}, {hi}]")
        out[k] = typ(v)


def parse(raw: dict, path: str = "<fleet>") -> Fleet:
    for k in raw:
        if k not in ("fleet", "event"):
            raise FleetError(f"{path}: {k}: unknown section (known: fleet, event)")
    vals: dict = {}
    _check(f"{path}: fleet", raw.get("fleet", {}), _FLEET_KEYS, vals)
    fl = Fleet(**vals)
    evs = raw.get("event", [])
    if not isinstance(evs, list):
        raise FleetError(f"{path}: event: must be a list of [[event]] tables")
    for i, e in enumerate(evs):
        ev: dict = {}
        _check(f"{path}: event[{i}]", e, _EVENT_KEYS, ev)
        for k in _EVENT_KEYS:
            if k not in ev:
                raise FleetError(f"{path}: event[{i}].{k}: missing")
        if ev["at_h"] - ev["notice_h"] < 0:
            raise FleetError(f"{path}: event[{i}].notice_h: announced before the run starts")
        if ev["at_h"] + ev["duration_h"] > fl.hours:
            raise FleetError(f"{path}: event[{i}].duration_h: ends after the run ({fl.hours} h)")
        fl.events.append(Event(**ev))
    fl.events.sort(key=lambda e: e.at_h)
    for a, b in zip(fl.events, fl.events[1:]):
        if b.at_h < a.at_h + a.duration_h:
            raise FleetError(f"{path}: event at {b.at_h} h: overlaps the event at {a.at_h} h")
    return fl


def load(path) -> Fleet:
    return parse(read_toml(path, FleetError), str(path))


# -- households and events ---------------------------------------------------

def households(fl: Fleet) -> list[Household]:
    rng = random.Random(fl.seed)
    out = []
    for i in range(fl.packs):
        cap = rng.choice((50.0, 80.0, 100.0, 120.0, 150.0))
        fault = rng.choice(FAULT_KINDS) if rng.random() < fl.fault_share else ""
        wrong = rng.random() < fl.wrong_soc_share
        soc = round(rng.uniform(0.35, 0.9), 3)
        err = round(rng.choice((-1, 1)) * rng.uniform(0.1, 0.3), 3) if wrong else 0.0
        err = min(max(err, -soc), 1.0 - soc)
        out.append(Household(
            index=i, seed=rng.randrange(1 << 30), capacity_ah=cap,
            fade=round(rng.uniform(0.0, 0.2), 3), resistance_growth=round(rng.uniform(0.0, 0.5), 3),
            initial_soc=soc, soc_error=err,
            reserve_cpct=rng.choice((2000, 2500, 3000, 4000)),
            max_power_w=rng.choice((3000, 5000, 7600)),
            max_duration_s=rng.choice((14400, 18000)),
            solar_peak_c=round(rng.uniform(0.0, 0.4), 3), load_day_c=round(rng.uniform(0.01, 0.06), 3),
            load_night_c=round(rng.uniform(0.02, 0.08), 3),
            fault=fault, fault_at_h=round(rng.uniform(0.2, max(0.3, fl.hours * 0.8)), 2)))
    return out


def seed_events(fl: Fleet) -> list[Event]:
    """Seed-like events when the file gives none: 1-5 h, notice from hours
    to none, the target a share of the fleet's rated power."""
    rng = random.Random(fl.seed ^ 0x5EED)
    houses = households(fl)
    fleet_kw = sum(min(h.max_power_w, h.capacity_ah * NOMINAL_V * 0.5) for h in houses) / 1000
    fleet_kwh = sum(h.capacity_ah * NOMINAL_V for h in houses) / 1000
    evs, t = [], min(1.0, fl.hours * 0.1)
    while True:
        dur = min(rng.choice((1.0, 2.0, 3.0, 4.0, 5.0)), fl.hours - t)
        if dur < 0.25:
            break
        notice = min(rng.choice((4.0, 1.0, 0.25, 0.0)), t)
        # an operator asks no more than about a third of the fleet's rated
        # energy over the event (what sits above typical reserves)
        kw = min(fleet_kw * rng.uniform(0.3, 0.7), fleet_kwh / 3 / dur)
        evs.append(Event(round(t, 2), round(dur, 2), notice, round(kw, 1)))
        t += dur + rng.uniform(2.0, 8.0)
        if t >= fl.hours:
            break
    return evs


def dispatch(fl: Fleet, houses: list[Household]) -> dict[int, list]:
    """Each pack's share of each event: pro rata to rated energy, capped at
    the pack's grid_max_power_w and grid_max_duration_s (what the
    aggregator's enrolment knows)."""
    total_wh = sum(h.capacity_ah * NOMINAL_V for h in houses)
    plan: dict[int, list] = {h.index: [] for h in houses}
    for ei, ev in enumerate(fl.events):
        for h in houses:
            w = min(h.max_power_w, ev.power_kw * 1000 * h.capacity_ah * NOMINAL_V / total_wh)
            if w >= 1:
                plan[h.index].append((ei, ev.at_h * 3600, int(round(w)),
                                      min(h.max_duration_s, int(round(ev.duration_h * 3600)))))
    return plan


def requested_w(fl: Fleet, plan: dict[int, list], n_int: int, interval_s: float) -> list[float]:
    """The aggregator's request per interval (mean W), from its own plan."""
    req = [0.0] * n_int
    for shares in plan.values():
        for _, t0, w, dur in shares:
            for k in range(n_int):
                a, b = k * interval_s, (k + 1) * interval_s
                ov = max(0.0, min(b, t0 + dur) - max(a, t0))
                req[k] += w * ov / interval_s
    return req


def scenario(job: PackJob) -> S.Scenario:
    h = job.house
    raw = {
        "name": f"fleet-pack-{h.index}", "seed": h.seed, "tick": f"{job.tick_s} s",
        "pack": {"chemistry": "LFP", "cells": CELLS, "temps": 4,
                 "capacity": f"{h.capacity_ah * (1 - h.fade):.3f} Ah", "capacity_spread": "3 %",
                 "resistance": f"{0.4 * (1 + h.resistance_growth):.4f} mohm",
                 "initial_soc": f"{h.initial_soc * 100:.1f} %"},
        "sensors": {"cell_noise": "5 mV", "current_noise": "0.1 A"},
        "thermal": {"ambient": "25 degC"},
        # the firmware is set for the rated capacity: ageing is unknown to it
        "firmware": {"capacity_mah": int(h.capacity_ah * 1000), "grid_reserve_cpct": h.reserve_cpct,
                     "grid_max_power_w": h.max_power_w, "grid_max_duration_s": h.max_duration_s,
                     # at 1 s ticks, 3 s of identical scans is noise repeating by chance (soc_week.toml)
                     "faults": {"STUCK_READING": [10000, 0, 5000, 0]}},
        "profile": [{"step": "household", "duration": f"{job.hours * 3600:.0f} s", "cv_voltage": "3.55 V",
                     "solar_peak": f"{h.solar_peak_c:.3f} C", "solar_start": "6 h", "solar_end": "20 h",
                     "solar_variation": "35 %", "load_day": f"{h.load_day_c:.3f} C",
                     "load_night": f"{h.load_night_c:.3f} C"}],
        "action": [{"kind": "grid_start", "at": f"{t0:.0f} s", "power": f"{w} W", "duration": f"{dur} s"}
                   for _, t0, w, dur in job.dispatch],
    }
    if h.soc_error:
        raw["firmware_soc"] = f"{(h.initial_soc + h.soc_error) * 100:.1f} %"
    if h.fault:
        raw["fault"] = [{"kind": h.fault, "at": f"{h.fault_at_h * 3600:.0f} s"}]
        if h.fault == "thermistor_open":
            raw["fault"][0]["sensor"] = 0
    return S.parse(raw, f"fleet/pack{h.index}")


def run_pack(job: PackJob) -> PackOutcome:
    import numpy as np

    from host_tools import report
    from host_tools.pack_plant import PackPlant
    from host_tools.sim import Simulation

    n_int = int(math.ceil(job.hours * 3600 / job.interval_s))
    bins = np.zeros(n_int)

    class FleetSim(Simulation):
        def _loop(self, link):
            from host_tools.loop import run_loop
            from host_tools.record import Result
            res = Result(self.sc, link.hello)
            res.firmware_config = self.config
            plant = PackPlant(self.sc, res, max(1, int(round(60 / self.sc.tick_s))), None, (job.interval_s, bins))
            return run_loop(link, plant, res, None, 1.0, False)

    res = FleetSim(scenario(job), cpu=worker_cpu()).run()
    starts = [t0 for _, t0, _, _ in job.dispatch]
    ends = []
    for t0, t1, reason, _mwh, wh in res.grid_ends:
        ei = next((job.dispatch[j][0] for j, s in enumerate(starts) if abs(s - t0) <= 2 * job.tick_s), -1)
        ends.append((ei, t0, t1, reason, wh))
    exporting = res.grid_a > 0
    low = float(res.soc_true[exporting].min()) if exporting.any() else None
    faults = " ".join(sorted({n for _, n, what in res.fault_events if what == "raised"}))
    return PackOutcome(job.house.index, bins.tolist(), ends, report.reserve_violations(res), low, res.sim_s, res.wall_s, faults)


# -- the report ----------------------------------------------------------------

def _opt_out(o: PackOutcome, ei: int, share) -> str:
    """'' when the pack served the whole event, else why not."""
    mine = [e for e in o.ends if e[0] == ei]
    if not mine:
        return "no answer"
    _, t0, t1, reason, _ = mine[0]
    if reason.startswith("rejected:"):
        return "refused: " + reason.split(":", 1)[1]
    if reason in ("deadline", "running"):
        return ""
    return f"ended early by {reason} after {(t1 - t0) / 60:.0f} min"


def main(fl: Fleet, out_dir: Path, workers: int | None = None, scheduler: str | None = None) -> int:
    if not fl.events:
        fl.events = seed_events(fl)
    houses = households(fl)
    plan = dispatch(fl, houses)
    interval_s = fl.interval_min * 60
    n_int = int(math.ceil(fl.hours * 3600 / interval_s))
    jobs = [PackJob(h, fl.hours, fl.tick_s, interval_s, plan[h.index]) for h in houses]
    t0 = time.perf_counter()
    with client(scheduler, workers) as c:
        m = run_all(c, run_pack, jobs, "fleet")
    wall = time.perf_counter() - t0
    outs = [o for o in m.results if o is not None]
    req = requested_w(fl, plan, n_int, interval_s)
    dl = [0.0] * n_int
    for o in outs:
        for k, wh in enumerate(o.delivered_wh):
            dl[k] += wh * 3600 / interval_s
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "fleet_intervals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_start_h", "requested_kw", "delivered_kw"])
        for k in range(n_int):
            w.writerow([f"{k * interval_s / 3600:.3f}", f"{req[k] / 1000:.3f}", f"{dl[k] / 1000:.3f}"])
    with open(out_dir / "fleet_packs.csv", "w", newline="") as f:
        w = csv.writer(f)
        hk = list(asdict(houses[0]).keys())
        w.writerow(hk + ["reserve_violations", "min_true_soc_exporting", "delivered_kwh", "faults", "lost"])
        byi = {o.index: o for o in outs}
        for h in houses:
            o = byi.get(h.index)
            w.writerow(list(asdict(h).values()) + (
                [o.reserve_violations, "" if o.min_true_soc_exporting is None else f"{o.min_true_soc_exporting:.4f}",
                 f"{sum(o.delivered_wh) / 1000:.3f}", o.faults, ""] if o else ["", "", "", "", "lost"]))
    # the report
    print(f"fleet: {fl.packs} packs x {fl.hours:g} h at {fl.tick_s:g} s ticks, seed {fl.seed}, "
          f"{sum(1 for h in houses if h.fault)} with a fault, {sum(1 for h in houses if h.soc_error)} with a wrong saved SOC")
    print(f"{'interval':>9} {'requested kW':>13} {'delivered kW':>13}")
    for k in range(n_int):
        if req[k] > 0 or dl[k] > 0:
            print(f"{k * interval_s / 3600:>8.2f}h {req[k] / 1000:>13.2f} {dl[k] / 1000:>13.2f}")
    print(f"{'event':<6} {'start h':>7} {'dur h':>5} {'notice h':>8} {'target kW':>9} {'asked kWh':>9} {'delivered kWh':>13} {'served':>6} {'opted out':>9}")
    outs_by = {o.index: o for o in outs}
    optouts, ev_rows = [], []
    for ei, ev in enumerate(fl.events):
        asked = sum(w * d for shares in plan.values() for e, _, w, d in shares if e == ei) / 3600 / 1000
        got = 0.0
        n_out = n_in = 0
        for h in houses:
            share = [s for s in plan[h.index] if s[0] == ei]
            if not share or h.index not in outs_by:
                continue
            o = outs_by[h.index]
            got += sum(e[4] for e in o.ends if e[0] == ei) / 1000
            why = _opt_out(o, ei, share[0])
            if why:
                n_out += 1
                optouts.append((ei, h, why))
            else:
                n_in += 1
        print(f"{ei:<6} {ev.at_h:>7.2f} {ev.duration_h:>5.2f} {ev.notice_h:>8.2f} {ev.power_kw:>9.1f} {asked:>9.1f} {got:>13.1f} {n_in:>6} {n_out:>9}")
        ev_rows.append([ei, ev.at_h, ev.duration_h, ev.notice_h, ev.power_kw, f"{asked:.3f}", f"{got:.3f}", n_in, n_out])
    for ei in range(len(fl.events)):
        reasons: dict = {}
        for e, _, why in optouts:
            if e == ei:
                key = why.split(" after ")[0]
                reasons[key] = reasons.get(key, 0) + 1
        if reasons:
            print(f"  event {ei} opt-outs by reason: " + ", ".join(f"{k} {n}" for k, n in sorted(reasons.items())))
    for ei, h, why in (optouts if fl.packs <= 12 else []):
        tags = [t for t in (h.fault and f"fault {h.fault} at {h.fault_at_h} h",
                            h.soc_error and f"saved SOC off by {h.soc_error * 100:+.0f} %") if t]
        print(f"  event {ei}: pack {h.index} ({h.capacity_ah:g} Ah, reserve {h.reserve_cpct / 100:g} %"
              f"{', ' + ', '.join(tags) if tags else ''}): {why}")
    with open(out_dir / "fleet_events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event", "start_h", "duration_h", "notice_h", "target_kw", "asked_kwh", "delivered_kwh", "served", "opted_out"])
        w.writerows(ev_rows)
    with open(out_dir / "fleet_optouts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event", "pack", "why"])
        w.writerows([ei, h.index, why] for ei, h, why in optouts)
    viol = {o.index: o.reserve_violations for o in outs}
    print(f"reserve violations on the plants' true SOC: {sum(viol.values())} "
          f"(packs with any: {[i for i, v in viol.items() if v] or 'none'})")
    sim_h = sum(o.sim_s for o in outs) / 3600
    print(f"{len(outs)} of {len(jobs)} packs ran on {m.workers} workers in {wall:.1f} s: "
          f"{sim_h:.1f} pack-hours simulated, {sim_h / (wall / 3600):.0f} packs x simulated hours per wall hour")
    for job, why in m.failed:
        print(f"  pack {job.house.index} lost: {why}")
    plot(out_dir / "fleet.png", req, dl, interval_s, fl)
    print(f"CSV: {(out_dir / 'fleet_intervals.csv').resolve()}, {(out_dir / 'fleet_packs.csv').resolve()}; "
          f"plot: {(out_dir / 'fleet.png').resolve()}")
    return 1 if m.failed or sum(viol.values()) else 0


def plot(path: Path, req, dl, interval_s, fl: Fleet) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [k * interval_s / 3600 for k in range(len(req) + 1)]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.stairs([r / 1000 for r in req], t, label="requested (aggregator)", lw=1.5)
    ax.stairs([d / 1000 for d in dl], t, label="delivered (plants)", lw=1.5)
    ax.set_xlabel("time (h)")
    ax.set_ylabel(f"fleet power, {fl.interval_min:g} min mean (kW)")
    ax.set_title(f"{fl.packs} packs, seed {fl.seed}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
