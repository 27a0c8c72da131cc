"""Campaign dimension "estimate error x operating state x grid event": the
firmware boots believing a SOC and a capacity that are wrong (state record
and configuration, scenario [estimate]) with a current sensor that reads
off ([sensors] current_offset, current_gain_error), and is asked for a grid
event that would take the pack through the owner's reserve. The promise is
about the plant's true SOC: every tick that exports to the grid while the
true pack SOC is below the reserve is a violation."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np

from host_tools import scenario as S
from host_tools.sim import FirmwareError, Simulation

SOC_ERRORS = (-0.40, -0.30, -0.20, -0.10, 0.0, 0.10, 0.20, 0.30, 0.40)
CAPACITY_ERRORS = (-0.30, -0.15, 0.0, 0.15, 0.30)
# operating state -> what the pack does besides the grid event
STATES = {
    "rest": [{"step": "rest", "duration": "50 min"}],
    # an evening at home: no sun, the house draws from the pack too
    "household": [{"step": "household", "duration": "50 min", "cv_voltage": "3.5 V", "solar_peak": "0 A",
                   "load_day": "8 A", "load_night": "8 A", "start_time": "19.5 h"}],
    "discharging": [{"step": "discharge", "current": "0.1 C", "timeout": "50 min"}],
}
EVENTS = {"3kW": "3 kW", "5kW": "5 kW"}  # the inverter gets what the DCL allows
TRUE_SOCS = (0.40, 0.55)
RESERVE = 0.30
SECOND_EVENT_S = 40 * 60  # a second request, after the first has ended


@dataclass
class EstJob:
    run: int
    soc_error: float
    capacity_error: float
    state: str
    event: str
    true_soc: float
    seed: int
    offset_a: float
    gain_error: float


@dataclass
class EstOutcome:
    job: EstJob
    violations: int  # ticks exporting with the true SOC below the reserve
    min_margin: float | None  # lowest true SOC while exporting - reserve (None: never exported)
    exported_wh: float
    ends: str  # how each grid event ended
    faults: str  # fault/critical rows raised
    warnings: str
    error: str = ""


def plan(runs: int, seed: int = 5) -> list[EstJob]:
    rng = random.Random(seed)
    grid = list(itertools.product(SOC_ERRORS, CAPACITY_ERRORS, STATES, EVENTS, TRUE_SOCS))
    jobs = []
    for run in range(runs):
        se, ce, state, ev, soc = grid[run % len(grid)]
        jobs.append(EstJob(run, se, ce, state, ev, soc, rng.randrange(1 << 30),
                           round(rng.uniform(-0.5, 0.5), 2), round(rng.uniform(-0.02, 0.02), 4)))
    return jobs


def scenario(job: EstJob) -> S.Scenario:
    raw = {
        "name": "estimate", "seed": job.seed, "tick": "1 s",
        "pack": {"chemistry": "LFP", "cells": 16, "temps": 4, "capacity": "100 Ah", "capacity_spread": "3 %",
                 "initial_soc": f"{job.true_soc * 100:.1f} %"},
        "sensors": {"cell_noise": "5 mV", "current_noise": "0.1 A", "current_offset": f"{job.offset_a} A",
                    "current_gain_error": f"{job.gain_error * 100:.2f} %"},
        "thermal": {"ambient": "25 degC"},
        "estimate": {"soc_error": f"{job.soc_error * 100:.0f} %", "capacity_error": f"{job.capacity_error * 100:.0f} %"},
        "firmware": {"grid_reserve_cpct": int(RESERVE * 10000)},
        "profile": STATES[job.state],
        "action": [{"kind": "grid_start", "at": "2 min", "power": EVENTS[job.event], "duration": "4 h"},
                   {"kind": "grid_start", "at": f"{SECOND_EVENT_S} s", "power": EVENTS[job.event], "duration": "1 h"}],
    }
    return S.parse(raw, "campaign/estimate")


def run_one(job: EstJob, cpu: int | None = None) -> EstOutcome:
    try:
        res = Simulation(scenario(job), cpu=cpu).run()
    except (FirmwareError, S.ScenarioError, OSError) as e:
        return EstOutcome(job, -1, None, 0.0, "", "", "", str(e)[:300])
    exporting = res.grid_a > 0
    violations = int((exporting & (res.soc_true < RESERVE)).sum())
    margin = float(res.soc_true[exporting].min() - RESERVE) if exporting.any() else None
    sev = res.severity()
    raised = res.faults_raised()
    faults = sorted({n for _, n in raised if sev[n] >= 2})
    warns = sorted({n for _, n in raised if sev[n] == 1})
    ends = " ".join(e[2] for e in res.grid_ends)
    return EstOutcome(job, violations, margin, res.grid_energy_wh, ends, " ".join(faults), " ".join(warns),
                      "firmware internal error" if res.internal_error else "")


def table(outs: list[EstOutcome]) -> str:
    lines = [f"{'soc error':>9} {'runs':>5} {'exported':>8} {'violations':>10} {'min margin':>10}  grid event ends"]
    for se in SOC_ERRORS:
        rows = [o for o in outs if o.job.soc_error == se]
        if not rows:
            continue
        m = [o.min_margin for o in rows if o.min_margin is not None]
        ends: dict[str, int] = {}
        for o in rows:
            for e in o.ends.split():
                ends[e] = ends.get(e, 0) + 1
        lines.append(f"{se * 100:>+8.0f}% {len(rows):>5} {len(m):>8} {sum(max(o.violations, 0) for o in rows):>10} "
                     f"{(min(m) * 100 if m else float('nan')):>+9.2f}  "
                     + " ".join(f"{k} {v}" for k, v in sorted(ends.items())))
    m = [o.min_margin for o in outs if o.min_margin is not None]
    err = [o for o in outs if o.error]
    trips = [o for o in outs if o.faults]
    lines.append(f"estimate-error runs: {len(outs)} (soc error x capacity error x state x event x true SOC, "
                 f"current offset +-0.5 A, gain +-2 %), exporting in {len(m)}; reserve violations (ticks exporting "
                 f"below the {RESERVE * 100:.0f} % reserve on the plant's true SOC): {sum(max(o.violations, 0) for o in outs)} "
                 f"in {sum(o.violations > 0 for o in outs)} runs; lowest true SOC while exporting: "
                 f"{(min(m) * 100 if m else float('nan')):+.2f} points over the reserve; errors {len(err)}; "
                 f"runs with a fault/critical row: {len(trips)}")
    w: dict[str, int] = {}
    for o in outs:
        for n in o.warnings.split():
            w[n] = w.get(n, 0) + 1
    if w:
        lines.append("  warnings (runs): " + ", ".join(f"{k} {v}" for k, v in sorted(w.items())))
    for o in [o for o in outs if o.violations or o.error or o.faults][:8]:
        j = o.job
        lines.append(f"  run {j.run}: soc {j.soc_error:+.2f} cap {j.capacity_error:+.2f} {j.state} {j.event} "
                     f"true {j.true_soc:.2f}: violations {o.violations} ends {o.ends} faults {o.faults} {o.error}")
    return "\n".join(lines)


def bad(outs: list[EstOutcome]) -> list[EstOutcome]:
    return [o for o in outs if o.violations != 0 or o.error]
