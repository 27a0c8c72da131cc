"""`bmsctl campaign`: fault injection × location × operating state, plus
nominal runs with random profiles, on Dask (host_tools/cluster.py).

Every injected fault has one fault-table row that must catch it, and a
reference time the reaction is measured from: the injection itself for
sensor and wiring faults, or the first tick at which the plant's true state
crossed the row's trip threshold for faults that develop physically (a
charger that does not stop, an internal short, a leak). A detection counts
only within the row's configured delay plus one tick (for composite
detections, the delay the firmware's settings add up to).
"""
from __future__ import annotations

import copy
import csv
import random
import time
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np

from host_tools import scenario as S
from host_tools.plant import PUMP_MAX_LPM
from host_tools.cluster import client, run_all, worker_cpu
from host_tools.sim import FirmwareError, Simulation

STATES = ("idle", "charging", "discharging", "balancing")
TICK_S = 0.1

# injector -> (fault-table row that must catch it, states where it applies,
#              extra run time after injection in s)
PLAN = {
    "charger_no_stop": ("CELL_OV_CRIT", ("charging",), 900),
    "load_short": ("SHORT_CIRCUIT", STATES, 10),
    "cell_internal_short": ("CELL_IMBALANCE", ("idle", "charging", "discharging"), 600),
    "open_sense_wire": ("VOLTAGE_CHANNEL", STATES, 10),
    "thermistor_open": ("THERMISTOR", STATES, 10),
    "thermistor_short": ("THERMISTOR", STATES, 10),
    "stuck_adc": ("STUCK_READING", STATES, 15),
    "frontend_comm_lost": ("STALE_MEASUREMENT", STATES, 10),
    "pump_seized": ("PUMP_NO_FLOW", STATES, 15),
    "coolant_leak": ("COOLANT_FLOW_LOW", STATES, 120),
    "contactor_welded": ("CONTACTOR_WELDED", STATES, 10),
    "precharge_resistor_open": ("PRECHARGE_FAILED", ("idle",), 30),
    "internal_error": ("INTERNAL_ERROR", STATES, 10),
    "watchdog_reset": ("WATCHDOG_RESET", ("idle",), 5),
    # a short between two scans: only the front end's own layer sees it
    "short_pulse": ("FE_SCD", STATES, 5),
}
# injectors that need a front end's chip model instead of the sim HAL
AFE = {"short_pulse": "bq76952"}
CELLS = 16
TEMPS = 4
# Faults that develop physically: their reaction is measured from the start
# of the readings' final crossing; the latency from the noise-free value's
# first crossing is shown beside it.
PHYSICAL = ("charger_no_stop", "cell_internal_short", "coolant_leak")


@dataclass
class Job:
    run: int
    kind: str  # injector, or "nominal"
    state: str
    location: int
    seed: int
    t_inject: float


@dataclass
class Outcome:
    run: int
    kind: str
    state: str
    location: int
    seed: int
    fault: str
    t_inject: float
    t_reference: float | None
    t_detect: float | None
    reaction_ms: float | None
    allowed_ms: float | None
    result: str  # detected / missed / late / no-trip / false-trip / error
    from_true_ms: float | None  # detection after the plant's noise-free value crossed
    balancing_at_injection: int
    other_faults: str
    detail: str = ""


def _base(seed: int, state: str, hot: bool) -> dict:
    soc = {"idle": "50 %", "charging": "50 %", "discharging": "50 %", "balancing": "99 %"}[state]
    amb = "34 degC" if hot else "25 degC"
    return {
        "name": "campaign", "seed": seed, "tick": "100 ms",
        "pack": {"chemistry": "LFP", "cells": CELLS, "temps": TEMPS, "capacity": "100 Ah", "initial_soc": soc,
                 "initial_soc_spread": "0.4 %" if state == "balancing" else "0 %"},
        "sensors": {"cell_noise": "1 mV"},
        "thermal": {"ambient": amb},
    }


def _profile(state: str, seconds: float) -> list[dict]:
    dur = f"{seconds:.1f} s"
    if state == "charging":
        return [{"step": "charge", "current": "0.3 C", "cv_voltage": "3.55 V", "timeout": dur}]
    if state == "discharging":
        return [{"step": "discharge", "current": "0.5 C", "timeout": dur}]
    return [{"step": "rest", "duration": dur}]


def fault_scenario(job: Job) -> S.Scenario:
    fault, _, extra = PLAN[job.kind]
    hot = job.kind in ("pump_seized", "coolant_leak")  # the pump must be running
    raw = _base(job.seed, job.state, hot)
    if job.kind == "charger_no_stop":
        raw["pack"]["initial_soc"] = "98.5 %"
    # a rest after the main step keeps the run going when the firmware ends
    # that step by opening the contactors
    raw["profile"] = _profile(job.state, job.t_inject + extra) + [{"step": "rest", "duration": "5 s"}]
    f = {"kind": job.kind, "at": f"{job.t_inject:.1f} s"}
    if job.kind in ("cell_internal_short", "open_sense_wire", "stuck_adc"):
        f["cell"] = job.location
    if job.kind in ("thermistor_open", "thermistor_short"):
        f["sensor"] = job.location
    if job.kind == "cell_internal_short":
        f["resistance"] = "0.02 ohm"  # a hard short: ~165 A inside the cell
    raw["fault"] = [f]
    if job.kind == "contactor_welded":
        raw["action"] = [{"kind": "enable_off", "at": f"{job.t_inject + 1.0:.1f} s"}]
    return S.parse(raw, f"campaign/{job.kind}")


def nominal_scenario(job: Job) -> S.Scenario:
    # Random but healthy: SOC stays between ~15 % and ~90 %, currents
    # within the limits, ambient 10..35 degC.
    rng = random.Random(job.seed)
    soc = rng.uniform(0.3, 0.7)
    raw = _base(job.seed, "idle", False)
    raw["pack"]["initial_soc"] = f"{soc * 100:.1f} %"
    raw["pack"]["initial_soc_spread"] = f"{rng.uniform(0, 1):.2f} %"
    raw["thermal"] = {"ambient": f"{rng.uniform(10, 35):.1f} degC"}
    steps = []
    for _ in range(rng.randint(3, 6)):
        kind = rng.choice(("charge", "discharge", "rest"))
        secs = rng.uniform(60, 360)
        if kind == "charge":
            c = rng.uniform(0.05, 0.5)
            if soc + c * secs / 3600 > 0.9:
                kind = "rest"
            else:
                soc += c * secs / 3600
                steps.append({"step": "charge", "current": f"{c:.3f} C", "cv_voltage": "3.5 V", "timeout": f"{secs:.0f} s"})
                continue
        if kind == "discharge":
            c = rng.uniform(0.05, 1.0)
            if soc - c * secs / 3600 < 0.15:
                kind = "rest"
            else:
                soc -= c * secs / 3600
                steps.append({"step": "discharge", "current": f"{c:.3f} C", "timeout": f"{secs:.0f} s"})
                continue
        steps.append({"step": "rest", "duration": f"{secs:.0f} s"})
    raw["profile"] = steps
    return S.parse(raw, "campaign/nominal")


def _first(mask, t):
    idx = np.nonzero(mask)[0]
    return float(t[idx[0]]) if len(idx) else None


def _run_start(mask, t, t_end):
    """Start of the unbroken run of True in mask that reaches t_end."""
    k = int(np.searchsorted(t, t_end - 1e-9))
    k = min(k, len(mask) - 1)
    if not mask[k]:
        return None
    j = k
    while j > 0 and mask[j - 1]:
        j -= 1
    return float(t[j])


def reference_time(job: Job, res, hello, t_det):
    """(reference time, allowed reaction in s, true-crossing time) for a job.

    For faults that develop physically, sensor noise decides when the
    readings cross the threshold for good: the reference is the start of
    the unbroken run of readings beyond the trip threshold that led to the
    detection (the firmware's own timing), and the first crossing of the
    plant's noise-free value is reported beside it.
    """
    fault = PLAN[job.kind][0]
    i = hello["faults"].index(fault)
    delay = hello["trip_delay_ms"][i] / 1000
    trip = hello["trip"][i]
    st = hello["settings"]
    t = res.t
    after = t >= job.t_inject - 1e-9
    if job.kind == "charger_no_stop":
        truth = _first(after & (res.vmax * 1000 >= trip), t)
        ref = _run_start(res.vmax_meas * 1000 >= trip, t, t_det) if t_det is not None else None
        return ref, delay + TICK_S, truth
    if job.kind == "cell_internal_short":
        lo, hi = st["imbalance_window_mv"]

        quiet = np.abs(res.cur * 1000) <= st["imbalance_max_ma"]

        def window(vmax, vmin):
            return ((vmax - vmin) * 1000 >= trip) & (vmin * 1000 > lo) & (vmax * 1000 < hi) & quiet
        truth = _first(after & window(res.vmax, res.vmin), t)
        ref = _run_start(window(res.vmax_meas, res.vmin_meas), t, t_det) if t_det is not None else None
        return ref, delay + TICK_S, truth
    if job.kind in ("coolant_leak", "pump_seized"):
        expect = res.duty * PUMP_MAX_LPM  # L/min the pump gives at this duty
        with np.errstate(divide="ignore", invalid="ignore"):
            deficit = np.where(expect > 0, 1000 * (1 - res.flow_lpm / expect), 0)
        truth = _first(after & (deficit >= trip), t)
        if job.kind == "pump_seized":
            # flow stops at once; the firmware judges flow over a sliding window
            return truth, delay + st["flow_window_ms"] / 1000 + TICK_S, truth
        # a slow leak: meter-pulse quantisation decides when the windowed
        # reading stays beyond the threshold; rebuild that reading as the
        # firmware computes it (pulses over the window, duty of the tick before)
        # integer arithmetic exactly as firmware/bms/measure.py and diagnose.py
        w = st["flow_window_ms"] // int(TICK_S * 1000)
        spinup = st["flow_spinup_ms"] + st["flow_window_ms"]  # diagnose.py: spin-up, then a whole window
        pulses = res.flow_pulses.astype(np.int64) & 0xFFFF
        duty_pm = np.rint(res.duty * 1000).astype(np.int64)
        meas = np.zeros(len(pulses))
        run_ms = 0
        for j in range(1, len(pulses)):
            d = int(duty_pm[j - 1])
            if d >= st["pump_min_duty_pm"]:
                if run_ms < spinup:
                    run_ms += int(TICK_S * 1000)
            else:
                run_ms = 0
            if j >= w and d >= st["pump_min_duty_pm"] and run_ms >= spinup:
                hz = ((int(pulses[j]) - int(pulses[j - w])) & 0xFFFF) * 1000 // (w * int(TICK_S * 1000))
                expect = st["flow_hz_full"] * d // 1000
                deficit = 1000 - (hz * 1000 // expect if expect > 0 else 1000)
                meas[j] = min(max(deficit, 0), 1000)
        ref = _run_start(after & (meas >= trip), t, t_det) if t_det is not None else None
        return ref, delay + TICK_S, truth
    if job.kind in ("stuck_adc", "frontend_comm_lost"):
        # these rows trip on "stuck / silent for trip ms"
        return job.t_inject, trip / 1000 + delay + TICK_S, job.t_inject
    if job.kind == "contactor_welded":
        # from the open command (enable off); feedback is read one tick later
        return job.t_inject + 1.0, delay + TICK_S, job.t_inject + 1.0
    if job.kind == "precharge_resistor_open":
        tries, timeout, retry = st["precharge_tries"], st["precharge_timeout_ms"] / 1000, st["precharge_retry_ms"] / 1000
        return 0.0, tries * timeout + (tries - 1) * retry + delay + TICK_S, 0.0
    if job.kind == "watchdog_reset":
        return 0.0, delay + TICK_S, 0.0
    return job.t_inject, delay + TICK_S, job.t_inject


def run_job(job: Job) -> Outcome:
    cpu = worker_cpu()
    try:
        if job.kind == "nominal":
            sc = nominal_scenario(job)
            res = Simulation(sc, cpu=cpu).run()
            sev = res.severity()
            trips = [(t, n) for t, n in res.faults_raised() if sev[n] >= 2]
            warns = sorted({n for t, n in res.faults_raised() if sev[n] == 1})
            return Outcome(job.run, "nominal", "random", 0, job.seed, "", 0.0, None, None, None, None,
                           "false-trip" if trips or res.internal_error else "no-trip", None, 0,
                           " ".join(f"{n}@{t:.1f}" for t, n in trips), "warnings: " + " ".join(warns))
        fault = PLAN[job.kind][0]
        sc = fault_scenario(job)
        res = Simulation(sc, stop_on_fault=fault, linger_s=1.0, cpu=cpu, afe=AFE.get(job.kind)).run()
    except (FirmwareError, S.ScenarioError, OSError) as e:
        return Outcome(job.run, job.kind, job.state, job.location, job.seed, PLAN.get(job.kind, ("",))[0],
                       job.t_inject, None, None, None, None, "error", None, 0, "", str(e)[:300])
    t_det = next((t for t, n in res.faults_raised() if n == fault and t >= min(job.t_inject, 0.0 if job.kind in ("precharge_resistor_open", "watchdog_reset") else job.t_inject) - 1e-9), None)
    t_ref, allowed, t_true = reference_time(job, res, res.hello, t_det)
    k_inj = min(int(round(job.t_inject / TICK_S)), len(res.balancing) - 1)
    bal = int(res.balancing[k_inj]) if len(res.balancing) else 0
    others = sorted({n for t, n in res.faults_raised() if n != fault})
    if t_det is None or t_ref is None:
        result, reaction = "missed", None
        detail = "reference never reached" if t_ref is None else ""
    else:
        reaction = (t_det - t_ref) * 1000
        result = "detected" if reaction <= allowed * 1000 + 1e-6 else "late"
        detail = ""
    from_true = (t_det - t_true) * 1000 if t_det is not None and t_true is not None else None
    return Outcome(job.run, job.kind, job.state, job.location, job.seed, fault, job.t_inject, t_ref, t_det,
                   reaction, allowed * 1000, result, from_true, bal, " ".join(others), detail)


def plan_jobs(repeats: int, nominal: int, seed: int = 1) -> list[Job]:
    rng = random.Random(seed)
    jobs = []
    run = 0
    for r in range(repeats):
        for kind, (_, states, _) in PLAN.items():
            if kind in ("cell_internal_short", "open_sense_wire", "stuck_adc"):
                locations = range(CELLS)
            elif kind in ("thermistor_open", "thermistor_short"):
                locations = range(TEMPS)
            else:
                locations = (0,)
            for state in states:
                for loc in locations:
                    t_inj = 0.0 if kind in ("precharge_resistor_open", "watchdog_reset") else round(rng.uniform(8.0, 12.0), 1)
                    jobs.append(Job(run, kind, state, loc, rng.randrange(1 << 30), t_inj))
                    run += 1
    for _ in range(nominal):
        jobs.append(Job(run, "nominal", "random", 0, rng.randrange(1 << 30), 0.0))
        run += 1
    return jobs


def _pct(vals, q):
    return float(np.percentile(vals, q)) if vals else float("nan")


def table(outcomes: list[Outcome]) -> str:
    lines = []
    head = (f"{'injector':<24} {'caught by':<18} {'inj':>5} {'det':>5} {'miss':>5} {'late':>5} {'err':>4} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'delay ms':>9} {'allowed ms':>10}  {'from true value p50/max ms':>26}")
    lines.append(head)
    lines.append("-" * len(head))
    tot = {"inj": 0, "det": 0, "miss": 0, "late": 0, "err": 0}
    for kind, (fault, _, _) in PLAN.items():
        rows = [o for o in outcomes if o.kind == kind]
        if not rows:
            continue
        det = [o for o in rows if o.result == "detected"]
        rx = [o.reaction_ms for o in rows if o.reaction_ms is not None]
        allowed = sorted({round(o.allowed_ms) for o in rows if o.allowed_ms is not None})
        c = {"inj": len(rows), "det": len(det), "miss": sum(o.result == "missed" for o in rows),
             "late": sum(o.result == "late" for o in rows), "err": sum(o.result == "error" for o in rows)}
        for k in tot:
            tot[k] += c[k]
        tr = [o.from_true_ms for o in rows if o.from_true_ms is not None]
        truth = f"{_pct(tr, 50):.0f}/{max(tr):.0f}" if tr and kind in PHYSICAL else ""
        lines.append(f"{kind:<24} {fault:<18} {c['inj']:>5} {c['det']:>5} {c['miss']:>5} {c['late']:>5} {c['err']:>4} "
                     f"{_pct(rx, 50):>7.0f} {_pct(rx, 99):>7.0f} {max(rx) if rx else float('nan'):>7.0f} "
                     f"{'/'.join(str(a - 100) for a in allowed):>9} {'/'.join(str(a) for a in allowed):>10}  {truth:>26}")
    lines.append("-" * len(head))
    lines.append("delay: the configured trip delay (for STUCK_READING and STALE_MEASUREMENT the stuck/silent time,\n"
                 "for PUMP_NO_FLOW plus the 1 s flow window, for PRECHARGE_FAILED 3 tries x 3 s + 2 pauses x 5 s);\n"
                 "allowed = delay + one 100 ms tick. Reaction: from the injection, the open command (welded) or the\n"
                 "start of the readings' final crossing of the trip threshold (physically developing faults).")
    lines.append(f"{'all injected faults':<43} {tot['inj']:>5} {tot['det']:>5} {tot['miss']:>5} {tot['late']:>5} {tot['err']:>4}")
    nom = [o for o in outcomes if o.kind == "nominal"]
    if nom:
        ft = [o for o in nom if o.result == "false-trip"]
        er = [o for o in nom if o.result == "error"]
        lines.append(f"nominal runs (random profiles, no fault): {len(nom)}, false trips (fault or critical raised): {len(ft)}, errors: {len(er)}")
        for o in ft[:5]:
            lines.append(f"  false trip in run {o.run} (seed {o.seed}): {o.other_faults}")
    return "\n".join(lines)


# the further dimensions (issue 13): module -> what its runs are
DIMENSIONS = {"estimate": "estimate error x operating state x grid event",
              "intermittent": "intermittent faults against the README's fault table",
              "envelope": "nominal runs over ticks, ambients, chemistries and profiles"}


def _dim_job(item):
    name, job = item
    import importlib
    mod = importlib.import_module(f"host_tools.campaign_{name}")
    return mod.run_one(job, worker_cpu())


def _lost(failed, label: str) -> int:
    """Prints the runs the cluster could not finish (retried and still
    failed, or lost with their worker); returns how many."""
    for job, why in failed:
        print(f"  {label} run lost: {job}: {why}")
    return len(failed)


def run_dimension(c, name: str, count: int) -> int:
    """Plans, runs and prints one further dimension; returns its bad runs."""
    import importlib
    mod = importlib.import_module(f"host_tools.campaign_{name}")
    jobs = mod.plan(count)
    t0 = time.perf_counter()
    m = run_all(c, _dim_job, [(name, j) for j in jobs], name)
    outs = [o for o in m.results if o is not None]
    outs.sort(key=lambda o: o.job.run)
    print(f"== {name}: {DIMENSIONS[name]}")
    print(mod.table(outs))
    print(f"{len(jobs)} {name} runs on {m.workers} workers in {time.perf_counter() - t0:.0f} s")
    return len(mod.bad(outs)) + _lost([(item[1], why) for item, why in m.failed], name)


def main(repeats: int, nominal: int, csv_path: Path, jobs_n: int | None = None, seed: int = 1,
         estimate: int = 0, intermittent: int = 0, envelope: int = 0, scheduler: str | None = None) -> int:
    """jobs_n: LocalCluster workers (default: the cores); scheduler: a
    running Dask scheduler's address instead."""
    with client(scheduler, jobs_n) as c:
        return _main(c, repeats, nominal, csv_path, seed, estimate, intermittent, envelope)


def _main(c, repeats, nominal, csv_path, seed, estimate, intermittent, envelope) -> int:
    nbad = 0
    for name, count in (("estimate", estimate), ("intermittent", intermittent), ("envelope", envelope)):
        if count:
            nbad += run_dimension(c, name, count)
    if not repeats and not nominal:
        return 1 if nbad else 0
    jobs = plan_jobs(repeats, nominal, seed)
    t0 = time.perf_counter()
    m = run_all(c, run_job, jobs, "campaign")
    wall = time.perf_counter() - t0
    workers = m.workers
    nbad += _lost(m.failed, "campaign")
    outcomes: list[Outcome] = [o for o in m.results if o is not None]
    outcomes.sort(key=lambda o: o.run)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(outcomes[0]).keys()))
        w.writeheader()
        for o in outcomes:
            w.writerow(asdict(o))
    print(table(outcomes))
    bal = [o for o in outcomes if o.state == "balancing" and o.kind != "nominal"]
    if bal:
        print(f"balancing-state runs with cells bleeding at the injection: {sum(o.balancing_at_injection > 0 for o in bal)} of {len(bal)}")
    print(f"{len(jobs)} runs on {workers} workers in {wall:.0f} s; CSV: {csv_path.resolve()}")
    bad = [o for o in outcomes if o.result in ("missed", "late", "error", "false-trip")]
    for o in bad[:10]:
        print(f"  run {o.run}: {o.kind} {o.state} loc {o.location} seed {o.seed}: {o.result} {o.detail} "
              f"(reaction {o.reaction_ms} ms, allowed {o.allowed_ms} ms, also {o.other_faults})")
    return 1 if bad or nbad else 0
