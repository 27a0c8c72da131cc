"""Summaries, expectation checks and plots of a simulation result."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host_tools.record import SEVERITY, Result


@dataclass
class Verdict:
    index: int
    text: str
    ok: bool
    detail: str


def _fmt_t(s: float) -> str:
    h, rem = divmod(int(round(s)), 3600)
    m, sec = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{sec:02d}"


def summary(res: Result) -> str:
    dt = res.tick_s
    trace = res.plant == "trace"
    lines = [
        f"{'record' if trace else 'scenario':<15} {res.name}: {res.description}",
        f"{'replayed time' if trace else 'simulated time':<15} {_fmt_t(res.sim_s)} ({res.ticks} ticks of {dt * 1000:.0f} ms)",
        f"wall time       {res.wall_s:.1f} s",
        f"real-time factor {res.rtf:.0f}x ({'replayed' if trace else 'simulated'} time / wall time, firmware on the MicroPython unix port)",
    ]
    if trace:
        have = ~res.gap
        lines += [
            f"gaps            {int(res.gap.sum())} ticks ({float(res.gap.sum()) * dt:.0f} s) without a reading: the firmware was told "
            f"\"no data\" (front end silent) in each",
            f"cell voltage    lowest {np.nanmin(res.vmin[have]) * 1000:.0f} mV, highest {np.nanmax(res.vmax[have]) * 1000:.0f} mV (as recorded)"
            if have.any() else "cell voltage    no readings",
            f"hottest sensor  {np.nanmax(res.tmax[have]):.1f} degC, coldest {np.nanmin(res.tmin[have]):.1f} degC (as recorded)"
            if have.any() else "temperature     no readings",
            f"current         {np.nanmin(res.cur[have]):+.1f} A .. {np.nanmax(res.cur[have]):+.1f} A (as recorded, + = charge)"
            if have.any() else "current         no readings",
            f"balancing       {float((res.balancing > 0).sum()) * dt / 60:.1f} min with at least one cell bleeding "
            f"(the record is not changed by it), up to {int(res.balancing.max()) if len(res.balancing) else 0} cells at once",
        ]
    else:
        lines += [
            f"cell voltage    lowest {res.vmin.min() * 1000:.0f} mV, highest {res.vmax.max() * 1000:.0f} mV (true terminal voltages)",
            f"hottest cell    {res.tmax.max():.1f} degC (ambient {res.ambient_c:.0f} degC)",
            f"SOC             {res.soc_min[0] * 100:.1f} % at start, highest cell {res.soc_max.max() * 100:.1f} %, lowest {res.soc_min.min() * 100:.1f} %",
            f"balancing       {float((res.balancing > 0).sum()) * dt / 60:.1f} min with at least one cell bleeding, {res.balance_energy_wh:.2f} Wh bled",
            f"pump energy     {res.pump_energy_wh:.2f} Wh (duty > 0 for {float((res.duty > 0).sum()) * dt / 60:.1f} min)",
        ]
    raised = [(t, n, w) for t, n, w in res.fault_events]
    if raised:
        lines.append("faults          " + "; ".join(f"{_fmt_t(t)} {n} {w}" for t, n, w in raised[:20])
                     + (f" (+{len(raised) - 20} more)" if len(raised) > 20 else ""))
    else:
        lines.append("faults          none raised")
    lines.append("contactors      " + ", ".join(f"{_fmt_t(t)} {s}" for t, s in res.contactor_events[:20]))
    if trace:
        lines += limit_figures(res)
    for i, kind, t, by in res.step_ends:
        lines.append(f"step {i} {kind:<9} ended at {_fmt_t(t)} by {by}")
    if res.internal_error:
        lines.append("firmware        reported an internal error (see its log)")
    lines += thermal_figures(res)
    lines += soc_figures(res)
    return "\n".join(lines)


def limit_figures(res: Result) -> list[str]:
    """The current limits the firmware published: range, and how long
    charge or discharge was blocked."""
    if not len(res.ccl):
        return []
    dt = res.tick_s
    out = [f"limits          CCL {res.ccl.min():.1f}..{res.ccl.max():.1f} A, DCL {res.dcl.min():.1f}..{res.dcl.max():.1f} A; "
           f"charge blocked (CCL 0) {float((res.ccl <= 0).sum()) * dt / 60:.1f} min, "
           f"discharge blocked (DCL 0) {float((res.dcl <= 0).sum()) * dt / 60:.1f} min"]
    if res.plant == "trace":
        # what a charger/inverter obeying the firmware would have refused (the record does not obey)
        cur = np.nan_to_num(res.cur)
        over_c = cur > res.ccl + 0.5
        over_d = -cur > res.dcl + 0.5
        out.append(f"limits vs data  the recorded current was above the CCL for {float(over_c.sum()) * dt / 60:.1f} min "
                   f"(by up to {float((cur - res.ccl)[over_c].max()) if over_c.any() else 0.0:.1f} A) and above the DCL for "
                   f"{float(over_d.sum()) * dt / 60:.1f} min (by up to {float((-cur - res.dcl)[over_d].max()) if over_d.any() else 0.0:.1f} A)")
    return out


def first_sync_t(res: Result, kinds=(1, 2)):
    """Host time of the firmware's first synchronisation of these kinds
    (frames.SYNC_NAMES; default full or empty)."""
    from host_tools import frames
    clock0 = res.clock0_ms
    for fw_ms, code, arg, _value in res.events:
        if code == frames.EV_SOC_SYNC and (kinds is None or arg in kinds):
            return ((fw_ms - clock0) % frames.TICKS_PERIOD) / 1000
    return None


def soc_error(res: Result, kinds=(1, 2), from_start: bool = False):
    """(t from, RMS, max |error|) of the firmware's SOC
    against soc_true (the plant's true pack SOC, or a trace's reference
    SOC) after the first synchronisation of these kinds (or over the whole
    record), as fractions; ticks where either is unknown are left out.
    None when there is nothing to compare."""
    t0 = 0.0 if from_start else first_sync_t(res, kinds)
    if t0 is None:
        return None
    sel = res.t >= t0 - 1e-9
    err = res.soc_fw[sel] - res.soc_true[sel]
    err = err[~np.isnan(err)]
    if not len(err):
        return None
    return t0, float(np.sqrt(np.mean(err ** 2))), float(np.abs(err).max())


def soc_compared(res: Result, t0: float) -> int:
    """Ticks from t0 on where both the firmware's SOC and soc_true are known."""
    sel = res.t >= t0 - 1e-9
    return int((~np.isnan(res.soc_fw[sel] - res.soc_true[sel])).sum())


def reference_figures(res: Result) -> list[str]:
    """A replay's SOC against the record's reference SOC: over the whole
    record and after the firmware's first synchronisation (any kind)."""
    if not len(res.soc_true) or np.isnan(res.soc_true).all():
        return ["SOC reference   none in the record"]
    out = []
    whole = soc_error(res, from_start=True)
    if whole:
        out.append(f"SOC error       whole record: RMS {whole[1] * 100:.2f} %, max {whole[2] * 100:.2f} % over {soc_compared(res, 0.0)} ticks "
                   f"(firmware SOC vs {res.truth}; ticks where either is unknown left out)")
    # after the first full/empty synchronisation; without one, after the first of any kind
    kinds = (1, 2) if first_sync_t(res) is not None else None
    t0 = first_sync_t(res, kinds)
    after = soc_error(res, kinds) if t0 is not None else None
    if after:
        from host_tools import frames
        kind = next(frames.SYNC_NAMES.get(a, str(a)) for _ms, c, a, _v in res.events
                    if c == frames.EV_SOC_SYNC and (kinds is None or a in kinds))
        out.append(f"SOC error       after the first synchronisation ({kind}) at {_fmt_t(t0)}: RMS {after[1] * 100:.2f} %, "
                   f"max {after[2] * 100:.2f} % over {soc_compared(res, t0)} ticks")
    else:
        out.append("SOC error       no synchronisation in this record")
    return out


def reserve_violations(res: Result) -> int:
    """Ticks in which the pack exported to the grid while the plant's true
    pack SOC was below the firmware's reserve setting."""
    reserve = res.hello.get("settings", {}).get("grid_reserve_cpct")
    if reserve is None:
        return 0
    return int(((res.grid_a > 0) & (res.soc_true < reserve / 10000)).sum())


def soc_figures(res: Result) -> list[str]:
    from host_tools import frames
    out = []
    if not len(res.soc_fw) or np.isnan(res.soc_fw).all():
        return out
    syncs = {}
    for _ms, code, arg, _v in res.events:
        if code == frames.EV_SOC_SYNC:
            k = frames.SYNC_NAMES.get(arg, str(arg))
            syncs[k] = syncs.get(k, 0) + 1
    e0 = float(res.soc_fw[0] - res.soc_true[0]) if not np.isnan(res.soc_fw[0]) else float("nan")
    out.append(f"SOC estimate    start error {e0 * 100:+.1f} %; synchronisations: "
               + (", ".join(f"{k} {v}" for k, v in sorted(syncs.items())) or "none"))
    se = soc_error(res)
    if res.plant == "trace":
        out += reference_figures(res)
    elif se:
        t0, rms, mx = se
        out.append(f"SOC error       after the first full/empty sync at {_fmt_t(t0)}: RMS {rms * 100:.2f} %, max {mx * 100:.2f} % "
                   f"(firmware SOC vs the plant's true pack SOC, every tick)")
    else:
        out.append("SOC error       no full/empty synchronisation in this run")
    if res.capacity_mah_fw and res.plant == "trace":
        out.append(f"capacity        firmware estimate {res.capacity_mah_fw / 1000:.1f} Ah (configured {res.rated_capacity_ah:.1f} Ah)")
    elif res.capacity_mah_fw:
        out.append(f"capacity        firmware estimate {res.capacity_mah_fw / 1000:.1f} Ah, plant's usable pack capacity {res.true_capacity_ah:.1f} Ah, "
                   f"rated {res.rated_capacity_ah:.1f} Ah")
    if res.charge_ends:
        out.append("top of charge   cell spread at the end of each charge: "
                   + ", ".join(f"#{i + 1} {sp * 1000:.1f} mV" for i, (_t, sp, _by) in enumerate(res.charge_ends)))
    for t0, t1, reason, mwh, wh in res.grid_ends:
        if reason.startswith("rejected"):
            out.append(f"grid event      at {_fmt_t(t0)} refused by the firmware ({reason.split(':', 1)[1]})")
        else:
            out.append(f"grid event      {_fmt_t(t0)}-{_fmt_t(t1)} ended by {reason}: {wh / 1000:.3f} kWh delivered (plant), "
                       f"firmware counted {mwh / 1e6:.3f} kWh")
    if res.grid_ends:
        reserve = res.hello["settings"].get("grid_reserve_cpct", 0) / 100
        exporting = res.grid_a > 0
        low = float(res.soc_true[exporting].min()) * 100 if exporting.any() else float("nan")
        out.append(f"grid total      {res.grid_energy_wh / 1000:.3f} kWh exported; reserve {reserve:.1f} %; lowest true SOC while exporting "
                   f"{low:.2f} %; reserve violations {reserve_violations(res)}")
    return out


def thermal_figures(res: Result) -> list[str]:
    """The cooling figures: hottest cell against the pump setpoint, spread,
    pump-fault detection time, pump energy (and against always-on when the
    scenario asked for that comparison)."""
    st = res.hello.get("settings", {})
    sp = st.get("pump_setpoint_dc")
    out = []
    hot = float(res.tmax.max())
    if sp is not None:
        out.append(f"thermal         hottest cell {hot:.1f} degC, setpoint {sp / 10:.1f} degC, overshoot {hot - sp / 10:+.1f} K; "
                   f"cell-to-cell spread max {float(res.tspread.max()):.1f} K")
    for t_inj, kind, _c, _s in res.injections:
        if kind in ("pump_seized", "coolant_leak", "coolant_sensor_open"):
            want = {"pump_seized": ("PUMP_NO_FLOW",), "coolant_leak": ("COOLANT_FLOW_LOW", "COOLANT_DT", "PUMP_NO_FLOW"),
                    "coolant_sensor_open": ("COOLANT_SENSOR",)}[kind]
            det = [(t, n) for t, n in res.faults_raised() if n in want and t >= t_inj]
            out.append(f"cooling fault   {kind} at {_fmt_t(t_inj)}: " +
                       (f"{det[0][1]} after {det[0][0] - t_inj:.1f} s (hottest cell then {float(res.tmax[int(round(det[0][0] / res.tick_s))]):.1f} degC)" if det else "not detected"))
    if res.heater_energy_wh:
        out.append(f"heater          {res.heater_energy_wh:.0f} Wh, on for {float(res.heater.sum()) * res.tick_s / 60:.1f} min")
    if res.always_on is not None:
        ao = res.always_on
        saving = 1 - res.pump_energy_wh / ao.pump_energy_wh if ao.pump_energy_wh else 0.0
        out.append(f"pump energy     controller {res.pump_energy_wh:.1f} Wh (hottest {hot:.1f} degC) vs always 100 % "
                   f"{ao.pump_energy_wh:.1f} Wh (hottest {float(ao.tmax.max()):.1f} degC): {saving * 100:.0f} % less")
    return out


def _series(res: Result, name: str):
    return {
        "cell_mv_max": (res.vmax, 1.0, "V"), "cell_mv_min": (res.vmin, 1.0, "V"),
        "temp_max_c": (res.tmax, 1.0, "degC"), "temp_min_c": (res.tmin, 1.0, "degC"),
        "current_a": (res.cur, 1.0, "A"), "soc_min": (res.soc_min, 100.0, "%"), "soc_max": (res.soc_max, 100.0, "%"),
    }[name]


# Fault -> the plant's true signal it watches, and the sign to compare it with.
_FAULT_SIGNAL = {
    "CELL_OV": ("vmax", 1000.0), "CELL_UV": ("vmin", 1000.0), "OT": ("tmax", 10.0), "UT": ("tmin", 10.0),
    "OC_CHG": ("cur", 1000.0), "OC_DSG": ("cur", -1000.0), "SHORT_CIRCUIT": ("cur", -1000.0),
}


def reaction(res: Result, fault: str):
    """(crossing time, detection time, contactors-open time, trip delay s) for
    the first time the plant's true signal crossed the fault's trip threshold."""
    hello = res.hello
    i = hello["faults"].index(fault)
    trip = hello["trip"][i]
    delay_s = hello["trip_delay_ms"][i] / 1000
    key = next(k for k in _FAULT_SIGNAL if fault.startswith(k))
    attr, scale = _FAULT_SIGNAL[key]
    series = getattr(res, attr) * scale
    above = fault.startswith(("CELL_OV", "OT", "OC", "SHORT"))
    hit = np.nonzero(series >= trip if above else series <= trip)[0]
    if not len(hit):
        return None
    k0 = int(hit[0])
    t_cross = float(res.t[k0])
    t_det = next((t for t, n, w in res.fault_events if n == fault and w == "raised" and t >= t_cross - 1e-9), None)
    opened = np.nonzero((res.outputs[k0:] & 5) != 5)[0]
    t_open = float(res.t[k0 + int(opened[0])]) if len(opened) else None
    return t_cross, t_det, t_open, delay_s


def check(res: Result) -> list[Verdict]:
    out = []
    sev_of = res.severity()
    order = {"warning": 1, "fault": 2, "critical": 3}
    dt = res.tick_s
    for e in res.expects:
        if e.kind == "no_fault":
            bad = [(t, n) for t, n in res.faults_raised() if sev_of.get(n, 3) >= order[e.severity]]
            if res.internal_error:
                bad.append((0.0, "INTERNAL_ERROR"))
            out.append(Verdict(e.index, e.text, not bad,
                               "none raised" if not bad else "raised: " + ", ".join(f"{n} at {_fmt_t(t)} ({SEVERITY.get(sev_of.get(n, 3))})" for t, n in bad[:5])))
        elif e.kind == "fault":
            ts = [t for t, n in res.faults_raised() if n == e.fault]
            out.append(Verdict(e.index, e.text, bool(ts), f"raised at {_fmt_t(ts[0])}" if ts else f"{e.fault} never raised"))
        elif e.kind == "reaction":
            r = reaction(res, e.fault)
            if r is None:
                out.append(Verdict(e.index, e.text, False, f"the plant never crossed the {e.fault} threshold"))
                continue
            t_cross, t_det, t_open, delay_s = r
            limit = e.within_s if e.within_s is not None else delay_s + dt
            critical = sev_of.get(e.fault) == 3
            if t_det is None or (critical and t_open is None):
                out.append(Verdict(e.index, e.text, False, f"{e.fault} crossed at {t_cross:.1f} s but " + ("was never raised" if t_det is None else "the contactors never opened")))
                continue
            react = max(t_det, t_open if critical else t_det) - t_cross
            ok = react <= limit + 1e-6
            out.append(Verdict(e.index, e.text, ok, f"reaction {react * 1000:.0f} ms (raised {(t_det - t_cross) * 1000:.0f} ms"
                               + (f", contactors open {(t_open - t_cross) * 1000:.0f} ms" if critical else "")
                               + f" after the true value crossed the trip threshold) vs limit {limit * 1000:.0f} ms"
                               + ("" if ok else f": {(react - limit) * 1000:.0f} ms too slow")))
        elif e.kind in ("max", "min"):
            arr, scale, unit = _series(res, e.signal)
            if e.signal.startswith("cell_mv"):
                arr, scale, unit, lim = arr * 1000, 1.0, "mV", e.limit * 1000
            else:
                lim = e.limit * scale
                arr = arr * scale
            val = float(arr.max() if e.kind == "max" else arr.min())
            ok = val <= lim if e.by == "at_most" else val >= lim
            out.append(Verdict(e.index, e.text, ok, f"{e.kind} {val:.1f} {unit} vs {e.by.replace('_', ' ')} {lim:.1f} {unit}"
                               + ("" if ok else f": {abs(val - lim):.1f} {unit} {'over' if e.by == 'at_most' else 'under'}")))
        elif e.kind == "detect":
            t0 = res.injections[0][0] if res.injections else 0.0
            ts = [t for t, n in res.faults_raised() if n == e.fault and t >= t0]
            ok = bool(ts) and ts[0] - t0 <= e.within_s + 1e-6
            out.append(Verdict(e.index, e.text, ok, (f"{e.fault} {ts[0] - t0:.1f} s after the injection" if ts else f"{e.fault} never raised")
                               + f" (limit {e.within_s:.1f} s)"))
        elif e.kind == "detect_before":
            ts = [t for t, n in res.faults_raised() if n == e.fault]
            hot = np.nonzero(res.tmax >= e.limit)[0]
            t_hot = float(res.t[hot[0]]) if len(hot) else None
            ok = bool(ts) and (t_hot is None or ts[0] < t_hot)
            out.append(Verdict(e.index, e.text, ok, (f"{e.fault} at {_fmt_t(ts[0])}" if ts else f"{e.fault} never raised")
                               + (f"; hottest cell reached {e.limit:.1f} degC at {_fmt_t(t_hot)}" if t_hot is not None else f"; hottest cell stayed below {e.limit:.1f} degC (max {float(res.tmax.max()):.1f})")))
        elif e.kind == "no_charge_below":
            cold = res.tmin < e.limit
            bad = np.nonzero(cold & (res.cur > 0.5))[0]
            charged = np.nonzero(res.cur > 0.5)[0]
            out.append(Verdict(e.index, e.text, not len(bad),
                               (f"charging {res.cur[bad[0]]:.1f} A at {res.tmin[bad[0]]:.1f} degC (coldest cell, true) at {_fmt_t(res.t[bad[0]])}" if len(bad) else
                                f"no charge current while the coldest cell was below {e.limit:.1f} degC; charging began at {_fmt_t(res.t[charged[0]]) if len(charged) else 'never'}"
                                + (f" with the coldest cell at {res.tmin[charged[0]]:.1f} degC" if len(charged) else ""))))
        elif e.kind == "overshoot":
            sp = res.hello["settings"]["pump_setpoint_dc"] / 10
            over = float(res.tmax.max()) - sp
            out.append(Verdict(e.index, e.text, over <= e.limit + 1e-9, f"hottest cell {float(res.tmax.max()):.1f} degC, {over:+.1f} K from the setpoint {sp:.1f} degC (limit {e.limit:.1f} K)"))
        elif e.kind == "pump_saving":
            ao = res.always_on
            if ao is None or not ao.pump_energy_wh:
                out.append(Verdict(e.index, e.text, False, "no always-on comparison run"))
            else:
                saving = 1 - res.pump_energy_wh / ao.pump_energy_wh
                out.append(Verdict(e.index, e.text, saving >= e.limit, f"{saving * 100:.0f} % less pump energy than always 100 % "
                                   f"({res.pump_energy_wh:.1f} vs {ao.pump_energy_wh:.1f} Wh; hottest {float(res.tmax.max()):.1f} vs {float(ao.tmax.max()):.1f} degC)"))
        elif e.kind == "soc_error":
            se = soc_error(res)
            if se is None:
                out.append(Verdict(e.index, e.text, False, "no full/empty synchronisation, so no error after it"))
            else:
                _t0, rms, mx = se
                ok = rms <= e.limit + 1e-12 and mx <= e.limit2 + 1e-12
                out.append(Verdict(e.index, e.text, ok, f"RMS {rms * 100:.2f} % (limit {e.limit * 100:.1f} %), max {mx * 100:.2f} % (limit {e.limit2 * 100:.1f} %)"))
        elif e.kind == "balance_cycles":
            hit = [i for i, (_t, sp, _b) in enumerate(res.charge_ends) if sp <= e.limit + 1e-12]
            ok = bool(hit) and hit[0] + 1 <= e.step
            out.append(Verdict(e.index, e.text, ok, (f"spread {res.charge_ends[hit[0]][1] * 1000:.1f} mV at the end of charge #{hit[0] + 1}" if hit else
                                                     f"never at or below {e.limit * 1000:.0f} mV in {len(res.charge_ends)} charges")
                               + f" (limit: charge #{e.step})"))
        elif e.kind == "reserve_violations":
            nv = reserve_violations(res)
            exported = bool((res.grid_a > 0).any())
            out.append(Verdict(e.index, e.text, nv <= e.step and exported, f"{nv} ticks exporting below the reserve (limit {e.step})"
                               + ("" if exported else "; nothing was exported, so nothing was shown")))
        elif e.kind == "grid_end":
            if e.step >= len(res.grid_ends):
                out.append(Verdict(e.index, e.text, False, f"only {len(res.grid_ends)} grid events"))
            else:
                reason = res.grid_ends[e.step][2].split(":")[0]
                ok = reason == e.by or (e.by == "floor" and reason in ("reserve", "voltage"))
                out.append(Verdict(e.index, e.text, ok, f"event {e.step} ended by {res.grid_ends[e.step][2]}"))
        elif e.kind == "step_end":
            ends = [x for x in res.step_ends if x[0] == e.step]
            if not ends:
                out.append(Verdict(e.index, e.text, False, f"step {e.step} never ended"))
            else:
                by = ends[0][3]
                out.append(Verdict(e.index, e.text, by == e.by, f"step {e.step} ended by {by} at {_fmt_t(ends[0][2])}" + ("" if by == e.by else f", expected {e.by}")))
    return out


def plot(res: Result, path) -> None:
    """Cell voltages, current and limits, SOC (firmware vs the plant's true
    SOC or the record's reference), temperatures, pump/balancing, the grid
    export where the run has one, contactors; faults marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_h = res.t / 3600
    ct = np.asarray(res.cell_t) / 3600
    cv = np.asarray(res.cell_v)
    ctemp = np.asarray(res.cell_temp)
    grid = len(res.grid_a) and bool((res.grid_a > 0).any())
    n_ax = 7 if grid else 6
    fig, ax = plt.subplots(n_ax, 1, figsize=(11, 2.6 * n_ax), sharex=True)
    ax[0].plot(ct, cv, lw=0.6)
    if res.plant == "trace" and res.gap.any():
        for a in ax:
            a.fill_between(t_h, 0, 1, where=res.gap, transform=a.get_xaxis_transform(), color="0.85", lw=0,
                           label="no reading (gap)")
    ax[0].set_ylabel("cell voltage (V)")
    import textwrap
    ax[0].set_title(textwrap.fill(f"{res.name}: {res.description}", 160), fontsize=8)
    ax[1].plot(t_h, res.cur, label="pack current", lw=0.8)
    ax[1].plot(t_h, res.ccl, "--", label="CCL", lw=0.7)
    ax[1].plot(t_h, -res.dcl, ":", label="-DCL", lw=0.7)
    ax[1].set_ylabel("current (A, + charge)")
    ax[1].legend(loc="upper right", fontsize=7)
    ax[2].plot(t_h, res.soc_fw * 100, label="firmware estimate", lw=0.8)
    if len(res.soc_true) and not np.isnan(res.soc_true).all():
        ax[2].plot(t_h, res.soc_true * 100, "--", lw=0.8, label=res.truth)
    ax[2].set_ylabel("SOC (%)")
    ax[2].legend(loc="upper right", fontsize=7)
    ax[3].plot(ct, ctemp, lw=0.6)
    cool = np.asarray(res.coolant)
    if len(cool) and not np.isnan(cool).all():
        ax[3].plot(ct, cool[:, 0], "k--", lw=0.8, label="coolant in")
        ax[3].plot(ct, cool[:, 1], "k:", lw=0.8, label="coolant out")
        ax[3].legend(loc="upper right", fontsize=7)
    ax[3].set_ylabel("temperature (degC)")
    ax[4].plot(t_h, res.duty * 100, label="pump duty %")
    ax[4].plot(t_h, res.balancing, label="cells balancing")
    ax[4].legend(loc="upper right", fontsize=7)
    ax[4].set_ylabel("pump / balance")
    if grid:
        ax[5].plot(t_h, res.grid_a, lw=0.8, label="export to the grid (plant)")
        ax[5].set_ylabel("grid export (A)")
        ax[5].legend(loc="upper right", fontsize=7)
    c = ax[-1]
    c.step(t_h, (res.outputs & 1) + 0.0, label="main -")
    c.step(t_h, ((res.outputs >> 1) & 1) * 0.9, label="precharge")
    c.step(t_h, ((res.outputs >> 2) & 1) * 0.8, label="main +")
    for t, name in res.faults_raised():
        for a in ax:
            a.axvline(t / 3600, color="r", lw=0.5, alpha=0.5)
        c.text(t / 3600, 1.05, name, fontsize=6, rotation=90, color="r", va="bottom")
    c.set_ylabel("contactors")
    c.set_ylim(-0.1, 1.6)
    c.legend(loc="upper right", fontsize=7)
    c.set_xlabel("time (h)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
