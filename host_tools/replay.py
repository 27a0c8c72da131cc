"""`bmsctl replay FILE`: recorded measurements through the unmodified
firmware (MicroPython unix port, sim HAL), tick by tick, with the same loop,
record and report as `bmsctl sim` (host_tools/loop.py, record.py,
report.py). Input formats and checks: host_tools/trace.py; what a trace
cannot know and how it is stood in for: host_tools/trace_plant.py."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from host_tools import frames, trace
from host_tools.link import FirmwareLink
from host_tools.loop import run_loop
from host_tools.record import Result
from host_tools.trace_plant import TracePlant

REPLAY_EXPECTS = ("no_fault", "fault", "max", "min", "soc_error")  # the ones a record can answer


class ReplayError(ValueError):
    pass


def load_config(config: str | None, scenario_path: str | None):
    """The firmware configuration (a pack config JSON as flashed, or a
    scenario's [pack]/[firmware]) and the scenario (None for a JSON)."""
    from host_tools import scenario
    from host_tools.sim import firmware_config
    if bool(config) == bool(scenario_path):
        raise ReplayError("give exactly one of --config (a pack configuration, JSON) or --scenario (its [pack]/[firmware])")
    if scenario_path:
        try:
            sc = scenario.load(scenario_path)
        except scenario.ScenarioError as e:
            raise ReplayError(str(e)) from None
        return firmware_config(sc), sc
    p = Path(config)
    try:
        cfg = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ReplayError(f"{p}: {e}") from None
    if not isinstance(cfg, dict):
        raise ReplayError(f"{p}: not a JSON object")
    for k in ("cells", "temps"):
        if not isinstance(cfg.get(k), int):
            raise ReplayError(f"{p}: {k}: an integer is needed")
    cfg.setdefault("hal", "sim")
    return cfg, None


def replay(cfg: dict, tr: trace.Trace, ticks: trace.Ticks, kernels: str = "viper", sc=None,
           plot_points: int = 4000) -> Result:
    """Runs the firmware over the resampled trace; returns the record."""
    tick_s = cfg.get("tick_ms", 100) / 1000
    with FirmwareLink(cfg, kernels) as link:
        res = Result(None, link.hello)
        res.plant = "trace"
        res.name = Path(tr.source).name
        res.description = (f"{tr.fmt} CSV, {len(tr.t_s)} samples every {trace.sample_period_s(tr):g} s (median), "
                           f"{ticks.held} ticks held a sample already sent, gaps beyond {ticks.max_gap_s:g} s"
                           + (f"; {tr.expanded}" if tr.expanded else ""))
        res.tick_s = tick_s
        res.clock0_ms = 0
        res.truth = tr.soc_label
        res.rated_capacity_ah = cfg.get("capacity_mah", 0) / 1000
        res.expects = [e for e in sc.expects if e.kind in REPLAY_EXPECTS
                       and not (e.kind in ("max", "min") and e.signal.startswith("soc"))] if sc is not None else []
        res.firmware_config = cfg
        decim = max(1, len(ticks.t_s) // plot_points)
        plant = TracePlant(tr, ticks, res, cfg["cells"], cfg["temps"], res.rated_capacity_ah, decim)
        run_loop(link, plant, res, decisions=True)
    res.firmware_log = link.log
    return res


DECISION_COLUMNS = ("t_s", "no_data", "contactor", "outputs", "ccl_a", "dcl_a", "soc_pct", "balance_mask", "pump_pm",
                    "heater", "faults")


def write_decisions(res: Result, path) -> None:
    """The firmware's decisions, one row per tick (the same for sim and
    replay, so two runs compare line by line)."""
    from host_tools.record import CONTACTOR_STATES
    names = res.hello["faults"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(DECISION_COLUMNS)
        for (t, outputs, cstate, ccl, dcl, soc, bal, duty, heater, fb), f in zip(res.decisions, res.sent):
            w.writerow([f"{t:.3f}", int(bool(f.flags & 1)), CONTACTOR_STATES[cstate] if cstate < len(CONTACTOR_STATES) else cstate,
                        outputs, f"{ccl / 1000:.3f}", f"{dcl / 1000:.3f}", "" if soc < 0 else f"{soc / 100:.2f}",
                        f"{bal:x}", duty, heater, ";".join(n for i, n in enumerate(names) if fb >> i & 1)])


def ntc_temp_c(counts, r25=10000.0, beta=3435.0, pullup=10000.0, full=4095):
    """The inverse of plant.ntc_counts (same defaults): the temperature an NTC count stands for."""
    c = np.asarray(counts, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 and full scale have no temperature
        r = pullup * c / (full - c)
        return 1 / (1 / 298.15 + np.log(r / r25) / beta) - 273.15


def write_sim_record(res: Result, path) -> None:
    """What a simulation's firmware was given, as a generic CSV (units that
    hold every count exactly): replaying it gives the same sensor frames.
    Not carried: the frame flags other than no-data (a test exception, a
    latched-fault clear, a short pulse), grid commands and the enable input
    (a replay's is on), and thermistor counts at 0 or full scale (an
    injected short or open sensor has no temperature to write: the row is
    left without it, so the replay has a gap there)."""
    n = res.hello["cells"]
    m = res.hello["temps"]
    head = (["time_s", "current_a", "pack_v", "bus_v"] + [f"cell{i + 1}_v" for i in range(n)]
            + [f"temp{i + 1}_c" for i in range(m)] + ["coolant_in_c", "coolant_out_c", "flow_pulses", "charger", "soc_ref"])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for k, f in enumerate(res.sent):
            if f.flags & 1:
                row = [repr(float(res.t[k]))] + [""] * (len(head) - 1)
            else:
                raw = list(f.temps_raw) + [f.cool_in_raw, f.cool_out_raw]
                temps = [float(x) if 0 < c < 4095 else float("nan") for c, x in zip(raw, ntc_temp_c(raw))]
                row = ([repr(float(res.t[k])), repr(f.current_raw / 100), repr(f.pack_raw / 100), repr(f.bus_raw / 100)]
                       + [repr(c / 10000) for c in f.cells_raw] + ["" if x != x else repr(x) for x in temps]
                       + [f.flow_pulses, int(bool(f.inputs & frames.IN_CHARGER)), repr(float(res.soc_true[k]) * 100)])
            w.writerow(row)
