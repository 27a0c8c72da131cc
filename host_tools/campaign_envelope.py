"""Campaign dimension "nominal runs over the envelope": no fault injected,
the default fault settings, every tick period the configuration accepts
(10 ms .. 1 s), ambient -20 .. 45 degC with the firmware booting at that
ambient (hot boots need the pump at once, cold ones the heater), every
chemistry preset, and the profiles a pack lives through: rest, charge and
discharge, household days, grid events, balancing at the top.

A fault or critical row raised is a false trip unless the plant's true
value is beyond that row's trip (a charge blocked below 0 degC is the
protection working, not a false trip): temperature and cell-voltage rows
are judged on the plant's true cell temperatures and voltages at the
moment they are raised (within 1 K or 10 mV: the sensors' error). Warnings are
counted per row, separately.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from host_tools import scenario as S
from host_tools.sim import FirmwareError, Simulation

TICKS_MS = (10, 20, 50, 100, 200, 500, 1000)
AMBIENTS_C = (-20, -10, 0, 10, 25, 35, 40, 45)
CHEMISTRIES = ("LFP", "NMC")
PROFILES = ("rest", "cycle", "household", "grid", "balancing")
TICKS_PER_RUN = 6000  # a run's length in ticks (60 s at 10 ms, 100 min at 1 s)
DAY_AT_S = 1000  # household at this tick and slower: a whole day
CV = {"LFP": (3.5, 3.45), "NMC": (4.1, 4.05)}  # charge CV, household CV per cell (V)
# rows on a true plant value (the hottest/coldest cell in 0.1 degC, the
# highest/lowest cell in mV) and the allowance for the sensors' error
TRUE_ROWS = {"OT_WARN": ("tmax", 10, 10), "OT_CHG": ("tmax", 10, 10), "OT_DSG": ("tmax", 10, 10),
             "OT_CRIT": ("tmax", 10, 10), "UT_CHG": ("tmin", 10, 10), "UT_DSG": ("tmin", 10, 10),
             "CELL_OV": ("vmax", 1000, 10), "CELL_OV_CRIT": ("vmax", 1000, 10),
             "CELL_UV": ("vmin", 1000, 10), "CELL_UV_CRIT": ("vmin", 1000, 10)}


@dataclass
class EnvJob:
    run: int
    tick_ms: int
    ambient_c: float
    chemistry: str
    profile: str
    heater: bool
    soc: float
    seed: int


@dataclass
class EnvOutcome:
    job: EnvJob
    false_trips: str  # fault/critical rows raised without the true cause
    true_trips: str  # fault/critical rows raised with the plant's true value beyond the trip
    warnings: str
    sim_s: float
    error: str = ""


def plan(runs: int, seed: int = 7) -> list[EnvJob]:
    """Every tick x profile, every chemistry and ambient spread over them."""
    rng = random.Random(seed)
    combos = list(itertools.product(TICKS_MS, PROFILES))
    jobs = []
    for run in range(runs):
        tick, prof = combos[run % len(combos)]
        amb = AMBIENTS_C[(run // len(combos) + run) % len(AMBIENTS_C)]
        chem = CHEMISTRIES[(run // len(AMBIENTS_C)) % len(CHEMISTRIES)]
        jobs.append(EnvJob(run, tick, float(amb + rng.uniform(-0.5 if amb > -20 else 0, 0.5 if amb < 45 else 0)), chem,
                           prof, amb <= 0 and rng.random() < 0.5, rng.uniform(0.35, 0.75), rng.randrange(1 << 30)))
    return jobs


def _steps(job: EnvJob, dur_s: float) -> tuple[list[dict], list[dict]]:
    cv, cv_house = CV[job.chemistry]
    third = f"{dur_s / 3:.0f} s"
    if job.profile == "rest":
        return [{"step": "rest", "duration": f"{dur_s:.0f} s"}], []
    if job.profile == "cycle":
        return [{"step": "charge", "current": "0.3 C", "cv_voltage": f"{cv} V", "timeout": third},
                {"step": "rest", "duration": third},
                {"step": "discharge", "current": "0.5 C", "timeout": third}], []
    if job.profile == "household":
        day = job.tick_ms >= DAY_AT_S
        return [{"step": "household", "duration": "24 h" if day else f"{dur_s:.0f} s", "cv_voltage": f"{cv_house} V",
                 "solar_peak": "0.4 C", "load_day": "0.05 C", "load_night": "0.08 C",
                 "start_time": "0 h" if day else f"{random.Random(job.seed).uniform(6, 20):.1f} h",
                 "solar_variation": "30 %"}], []
    if job.profile == "grid":
        return ([{"step": "rest", "duration": f"{dur_s:.0f} s"}],
                [{"kind": "grid_start", "at": f"{dur_s / 10:.0f} s", "power": "3 kW", "duration": f"{dur_s / 2:.0f} s"}])
    # balancing: the pack at the top of its charge, cells apart
    return [{"step": "charge", "current": "0.1 C", "cv_voltage": f"{cv} V", "timeout": f"{dur_s / 2:.0f} s"},
            {"step": "rest", "duration": f"{dur_s / 2:.0f} s"}], []


def scenario(job: EnvJob) -> S.Scenario:
    dur = max(60.0, TICKS_PER_RUN * job.tick_ms / 1000)
    steps, actions = _steps(job, dur)
    top = job.profile == "balancing"
    raw = {
        "name": "envelope", "seed": job.seed, "tick": f"{job.tick_ms} ms",
        "pack": {"chemistry": job.chemistry, "cells": 16, "temps": 4, "capacity": "100 Ah",
                 "initial_soc": "96 %" if top else f"{job.soc * 100:.1f} %",
                 "initial_soc_spread": "0.6 %" if top else "0.3 %"},
        "sensors": {"cell_noise": "1 mV"},
        # the firmware boots with the pack at the ambient
        "thermal": {"ambient": f"{job.ambient_c:.1f} degC"},
        "profile": steps,
        "action": actions,
    }
    if job.heater:
        raw["firmware"] = {"heater_enabled": True}
    return S.parse(raw, "campaign/envelope")


def run_one(job: EnvJob, cpu: int | None = None) -> EnvOutcome:
    try:
        res = Simulation(scenario(job), cpu=cpu).run()
    except (FirmwareError, S.ScenarioError, OSError) as e:
        return EnvOutcome(job, "", "", "", 0.0, str(e)[:300])
    h = res.hello
    sev = res.severity()
    false, true, warns = [], [], set()
    for t, n in res.faults_raised():
        if sev[n] == 1:
            warns.add(n)
            continue
        if n in TRUE_ROWS:
            i = h["faults"].index(n)
            k = min(int(round(t / (job.tick_ms / 1000))), len(res.t) - 1)
            series, scale, allow = TRUE_ROWS[n]
            v = getattr(res, series)[k] * scale
            beyond = v >= h["trip"][i] - allow if h["above"][i] else v <= h["trip"][i] + allow
            if beyond:
                true.append(f"{n}@{t:.0f}")
                continue
        false.append(f"{n}@{t:.1f}")
    err = "firmware internal error" if res.internal_error else ""
    return EnvOutcome(job, " ".join(false), " ".join(true), " ".join(sorted(warns)), res.sim_s, err)


def table(outs: list[EnvOutcome]) -> str:
    lines = [f"{'tick ms':>7} {'runs':>5} {'false trips':>11} {'true trips':>10}  ambient degC   chemistries  profiles"]
    for tick in TICKS_MS:
        rows = [o for o in outs if o.job.tick_ms == tick]
        if not rows:
            continue
        amb = [o.job.ambient_c for o in rows]
        lines.append(f"{tick:>7} {len(rows):>5} {sum(bool(o.false_trips) for o in rows):>11} "
                     f"{sum(bool(o.true_trips) for o in rows):>10}  {min(amb):>5.1f}..{max(amb):<5.1f}  "
                     f"{' '.join(sorted({o.job.chemistry for o in rows})):<11}  {' '.join(sorted({o.job.profile for o in rows}))}")
    w: dict[str, int] = {}
    for o in outs:
        for n in o.warnings.split():
            w[n] = w.get(n, 0) + 1
    tr: dict[str, int] = {}
    for o in outs:
        for n in o.true_trips.split():
            tr[n.split("@")[0]] = tr.get(n.split("@")[0], 0) + 1
    lines.append(f"nominal envelope runs: {len(outs)} ({sum(o.sim_s for o in outs) / 3600:.1f} h simulated; "
                 f"ambient {min(o.job.ambient_c for o in outs):.1f}..{max(o.job.ambient_c for o in outs):.1f} degC, "
                 f"heater on in {sum(o.job.heater for o in outs)}); false trips (fault or critical): "
                 f"{sum(bool(o.false_trips) for o in outs)}; errors {sum(bool(o.error) for o in outs)}")
    lines.append("  warnings by row (runs): " + (", ".join(f"{k} {v}" for k, v in sorted(w.items())) or "none"))
    lines.append("  protection on the true value (runs): " + (", ".join(f"{k} {v}" for k, v in sorted(tr.items())) or "none"))
    for o in [o for o in outs if o.false_trips or o.error][:8]:
        j = o.job
        lines.append(f"  run {j.run}: tick {j.tick_ms} ms {j.chemistry} {j.profile} {j.ambient_c:.1f} degC "
                     f"heater {j.heater}: {o.false_trips} {o.error}")
    return "\n".join(lines)


def bad(outs: list[EnvOutcome]) -> list[EnvOutcome]:
    return [o for o in outs if o.false_trips or o.error]
