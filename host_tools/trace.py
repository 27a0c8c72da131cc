"""Recorded pack data for `bmsctl replay`: parse, check, expand, resample.

Formats
- monitor: the CSV `bmsctl monitor --csv` writes (detected by its header).
  Time t_ms (the firmware's clock, ms, unwrapped at 2**30), current i_ma
  (mA, + = charge), cellN_mv (mV), tempN_dc and cool_in_dc/cool_out_dc
  (0.1 degC), flow_hz (flow meter pulses per second). Its soc_cpct (the
  recording firmware's own estimate, 0.01 %) is the reference SOC.
- generic: any CSV with a header row. Default column names and units
  (each can be changed with --column KEY=NAME / --unit KEY=UNIT or a TOML
  mapping file with [columns] and [units] tables):
    time     time_s          s        (s, ms, min, h)
    current  current_a       A        (A, mA); sign: current_sign =
                                       charge_positive (default) or discharge_positive
    cell     cell{i}_v       V        (V, mV); i = 1..cells, or one column
                                       (e.g. --column cell=cell_v) for every cell
    temp     temp{i}_c       degC     (degC, dC = 0.1 degC, K); i = 1..temps, or one column for all
    cool_in  coolant_in_c    degC     optional; cool_out coolant_out_c, optional
    flow     flow_lpm        lpm      optional (lpm, hz = meter pulses/s, pulses = the counter)
    soc      soc_ref         %        optional reference SOC (%, fraction, cpct)
    pack     pack_v          V        optional pack voltage (default: sum of the cells)
    bus      bus_v           V        optional DC-link voltage (default: an ideal precharge)
    charger  charger         0/1      optional "a charge source is present" input
- single cell: a generic CSV with one cell column, expanded to the pack
  with expand() (a seeded per-cell offset and resistance spread, and
  seeded sensor noise: see expand()).

A value that is empty, "None", "nan" or "-" is missing. A tick whose
newest sample is missing any sensor value, or is older than the largest
allowed gap, has no reading: the firmware gets a frame flagged "front end
silent" (the sim HAL's FLAG_NO_DATA), exactly as when a real front end
stops answering, so it counts the reading as stale and never sees an
invented measurement."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host_tools.tomlfile import read_toml

MONITOR_HEAD = ("host_time", "t_ms", "tl", "contactor")
TICKS_PERIOD = 1 << 30  # the firmware's ticks_ms wrap (monitor t_ms)
MISSING = ("", "none", "nan", "-", "null")

UNITS = {  # key -> {unit: factor to the internal unit}
    "time": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
    "current": {"A": 1.0, "mA": 1e-3},
    "cell": {"V": 1.0, "mV": 1e-3},
    "pack": {"V": 1.0, "mV": 1e-3},
    "bus": {"V": 1.0, "mV": 1e-3},
    "temp": {"degC": 1.0, "dC": 0.1, "K": 1.0},
    "cool_in": {"degC": 1.0, "dC": 0.1, "K": 1.0},
    "cool_out": {"degC": 1.0, "dC": 0.1, "K": 1.0},
    "flow": {"lpm": 1.0, "hz": 1.0, "pulses": 1.0},
    "soc": {"%": 0.01, "fraction": 1.0, "cpct": 1e-4},
    "charger": {"0/1": 1.0},
}
GENERIC_COLUMNS = {"time": "time_s", "current": "current_a", "cell": "cell{i}_v", "temp": "temp{i}_c",
                   "cool_in": "coolant_in_c", "cool_out": "coolant_out_c", "flow": "flow_lpm", "soc": "soc_ref",
                   "pack": "pack_v", "bus": "bus_v", "charger": "charger"}
GENERIC_UNITS = {"time": "s", "current": "A", "cell": "V", "temp": "degC", "cool_in": "degC", "cool_out": "degC",
                 "flow": "lpm", "soc": "%", "pack": "V", "bus": "V", "charger": "0/1"}
MONITOR_COLUMNS = {"time": "t_ms", "current": "i_ma", "cell": "cell{i}_mv", "temp": "temp{i}_dc", "cool_in": "cool_in_dc",
                   "cool_out": "cool_out_dc", "flow": "flow_hz", "soc": "soc_cpct", "pack": "pack_mv"}
MONITOR_UNITS = {"time": "ms", "current": "mA", "cell": "mV", "temp": "dC", "cool_in": "dC", "cool_out": "dC",
                 "flow": "hz", "soc": "cpct", "pack": "mV"}
OPTIONAL = ("cool_in", "cool_out", "flow", "soc", "pack", "bus", "charger")
# Plausible ranges after conversion (a value outside says: wrong unit or not a measurement).
CELL_V_MAX = 6.0
CELL_V_MEDIAN_MIN = 0.5  # a column whose median is below this is not cell volts (mV declared, V given?)
TEMP_C_RANGE = (-60.0, 200.0)
CURRENT_A_MAX = 10000.0
SOC_RANGE = (-0.1, 1.1)  # a little beyond 0..100 %: an over-charged or over-discharged pack


class TraceError(ValueError):
    pass


@dataclass
class Trace:
    source: str
    fmt: str  # "monitor" or "generic"
    t_s: np.ndarray  # sample times from the first sample, s
    cells_v: np.ndarray  # samples x cells (nan = missing)
    temps_c: np.ndarray  # samples x temps
    current_a: np.ndarray  # + = charge
    coolant_c: np.ndarray | None = None  # samples x 2 (in, out)
    flow: np.ndarray | None = None  # as declared (lpm, hz or pulses)
    flow_unit: str = "lpm"
    soc_ref: np.ndarray | None = None  # fraction
    soc_label: str = "the record's reference SOC"
    pack_v: np.ndarray | None = None
    bus_v: np.ndarray | None = None
    charger: np.ndarray | None = None
    expanded: str = ""  # how a single cell became a pack

    @property
    def n_cells(self) -> int:
        return self.cells_v.shape[1]


def load_mapping(path) -> tuple[dict, dict, str | None]:
    """A TOML mapping file: [columns] KEY = "name", [units] KEY = "unit",
    optional current_sign = "charge_positive" | "discharge_positive"."""
    p = Path(path)
    raw = read_toml(p, TraceError)
    for k in raw:
        if k not in ("columns", "units", "current_sign"):
            raise TraceError(f"{p}: unknown key {k!r} (columns, units, current_sign)")
    return dict(raw.get("columns", {})), dict(raw.get("units", {})), raw.get("current_sign")


def _expand_names(pattern: str, header: list[str]) -> list[str]:
    """Column names for a per-cell/per-sensor pattern: {i} = 1, 2, ... as
    long as the header has them; a plain name is one column for all."""
    if "{i}" not in pattern:
        return [pattern] if pattern in header else []
    rx = re.compile("^" + re.escape(pattern).replace(re.escape("{i}"), r"(\d+)") + "$")
    found = sorted((int(m.group(1)), h) for h in header for m in [rx.match(h)] if m)
    return [h for _i, h in found]


def load(path, cells: int, temps: int, columns: dict | None = None, units: dict | None = None,
         current_sign: str | None = None, fmt: str | None = None, single_cell: bool = False) -> Trace:
    """Parses and checks a recorded CSV for a pack of `cells` cells and
    `temps` thermistors (single_cell: one cell column, to be expanded)."""
    p = Path(path)
    try:
        text = p.read_text(errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"{p}: cannot read: {e}") from None
    rows = list(csv.reader(text.splitlines()))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if len(rows) < 2:
        raise TraceError(f"{p}: no data rows (a header row and at least one sample are needed)")
    header = [h.strip() for h in rows[0]]
    detected = "monitor" if tuple(header[:4]) == MONITOR_HEAD else "generic"
    fmt = fmt or detected
    if fmt == "monitor" and detected != "monitor":
        raise TraceError(f"{p}: row 1: not a monitor CSV (its header starts {','.join(MONITOR_HEAD)})")
    cols = dict(MONITOR_COLUMNS if fmt == "monitor" else GENERIC_COLUMNS)
    unit = dict(MONITOR_UNITS if fmt == "monitor" else GENERIC_UNITS)
    for k, v in (columns or {}).items():
        if k not in GENERIC_COLUMNS:
            raise TraceError(f"--column {k}: unknown key (one of {', '.join(GENERIC_COLUMNS)})")
        cols[k] = v
    for k, v in (units or {}).items():
        if k not in UNITS:
            raise TraceError(f"--unit {k}: unknown key (one of {', '.join(UNITS)})")
        if v not in UNITS[k]:
            raise TraceError(f"--unit {k}={v}: unknown unit (one of {', '.join(UNITS[k])})")
        unit[k] = v
    if fmt == "generic" and "flow" not in (columns or {}) and cols["flow"] not in header and "flow_pulses" in header:
        cols["flow"], unit["flow"] = "flow_pulses", "pulses"  # a counter (what bmsctl sim --record writes)
    sign = current_sign or "charge_positive"
    if sign not in ("charge_positive", "discharge_positive"):
        raise TraceError(f"current_sign {sign!r}: charge_positive or discharge_positive")
    seen = {}
    for j, h in enumerate(header):
        if h in seen:
            raise TraceError(f"{p}: row 1, column {j + 1} ({h}): duplicate column name")
        seen[h] = j
    # a second header (the monitor starts one when another pack is flashed)
    for r, row in enumerate(rows[1:], start=2):
        if [c.strip() for c in row[:4]] == header[:4] and r > 1:
            raise TraceError(f"{p}: row {r}: a second header row (the pack changed during the record); "
                             f"split the file and replay each part")

    def need(key):
        name = cols[key]
        names = _expand_names(name, header)
        if not names:
            raise TraceError(f"{p}: row 1: missing column {name!r} ({key}); columns are: {', '.join(header)}")
        return names

    cell_names = need("cell")
    temp_names = need("temp")
    if single_cell:
        if len(cell_names) != 1:
            raise TraceError(f"{p}: row 1: a single-cell trace needs one cell column, found {len(cell_names)}: "
                             f"{', '.join(cell_names)}")
    elif len(cell_names) not in (1, cells) or ("{i}" in cols["cell"] and len(cell_names) != cells):
        raise TraceError(f"{p}: row 1, column {cell_names[-1]}: {len(cell_names)} cell columns, the configuration "
                         f"has {cells} cells")
    if len(temp_names) not in (1, temps) or ("{i}" in cols["temp"] and len(temp_names) != temps):
        raise TraceError(f"{p}: row 1, column {temp_names[-1]}: {len(temp_names)} temperature columns, the "
                         f"configuration has {temps} thermistors")
    idx = {"time": [seen[need("time")[0]]], "current": [seen[need("current")[0]]],
           "cell": [seen[c] for c in cell_names], "temp": [seen[c] for c in temp_names]}
    for key in OPTIONAL:
        if cols.get(key) in seen:
            idx[key] = [seen[cols[key]]]
    ncol = len(header)
    data = {k: np.full((len(rows) - 1, len(v)), np.nan) for k, v in idx.items()}
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != ncol:
            raise TraceError(f"{p}: row {r}: {len(row)} fields, the header has {ncol}")
        for key, js in idx.items():
            out = data[key][r - 2]
            for q, j in enumerate(js):
                cell = row[j].strip()
                if cell.lower() in MISSING:
                    continue
                try:
                    out[q] = float(cell)
                except ValueError:
                    raise TraceError(f"{p}: row {r}, column {header[j]}: {cell!r} is not a number") from None
    for key in data:
        data[key] *= UNITS[key][unit[key]]
        if unit.get(key) == "K":
            data[key] -= 273.15

    def where(key, i, q=0):
        return f"{p}: row {i + 2}, column {header[idx[key][q]]}"

    t = data["time"][:, 0]
    if np.isnan(t).any():
        raise TraceError(f"{where('time', int(np.nonzero(np.isnan(t))[0][0]))}: missing time stamp")
    if fmt == "monitor" and unit["time"] == "ms":
        # the firmware's ticks_ms wraps at 2**30: a step back by more than
        # half the period is the wrap; any other step back is a reboot
        raw = data["time"][:, 0] * 1000
        d = np.diff(raw)
        wrapped = d < -TICKS_PERIOD / 2
        bad = np.nonzero((d < 0) & ~wrapped)[0]
        if len(bad):
            i = int(bad[0]) + 1
            raise TraceError(f"{where('time', i)}: time {raw[i]:.0f} ms is before the previous {raw[i - 1]:.0f} ms "
                             f"(the board rebooted? split the record there)")
        t = (raw[0] + np.concatenate(([0.0], np.cumsum(np.where(wrapped, d + TICKS_PERIOD, d))))) / 1000
    d = np.diff(t)
    bad = np.nonzero(d <= 0)[0]
    if len(bad):
        i = int(bad[0]) + 1
        what = "duplicate time stamp" if d[bad[0]] == 0 else "time goes backwards"
        raise TraceError(f"{where('time', i)}: {what} ({t[i]:g} s after {t[i - 1]:g} s)")
    cv = data["cell"]
    for q in range(cv.shape[1]):
        col = cv[:, q]
        ok = ~np.isnan(col)
        if ok.any() and np.median(col[ok]) < CELL_V_MEDIAN_MIN:
            i = int(np.nonzero(ok)[0][0])
            raise TraceError(f"{where('cell', i, q)}: median {np.median(col[ok]):.4g} V is no cell voltage: values "
                             f"in volts where {unit['cell']} was declared? (--unit cell=...)")
        hi = np.nonzero(ok & ((col > CELL_V_MAX) | (col < 0)))[0]
        if len(hi):
            i = int(hi[0])
            raise TraceError(f"{where('cell', i, q)}: {col[i]:.4g} V is no cell voltage (0..{CELL_V_MAX:g} V): "
                             f"millivolts where {unit['cell']} was declared? (--unit cell=mV)")
    for key in ("temp", "cool_in", "cool_out"):
        if key not in data:
            continue
        for q in range(data[key].shape[1]):
            col = data[key][:, q]
            bad = np.nonzero(~np.isnan(col) & ((col < TEMP_C_RANGE[0]) | (col > TEMP_C_RANGE[1])))[0]
            if len(bad):
                i = int(bad[0])
                raise TraceError(f"{where(key, i, q)}: {col[i]:.4g} degC is outside {TEMP_C_RANGE[0]:g}..{TEMP_C_RANGE[1]:g} degC "
                                 f"(declared unit {unit[key]})")
    cur = data["current"][:, 0]
    bad = np.nonzero(np.abs(np.nan_to_num(cur)) > CURRENT_A_MAX)[0]
    if len(bad):
        i = int(bad[0])
        raise TraceError(f"{where('current', i)}: {cur[i]:.4g} A is beyond {CURRENT_A_MAX:g} A: milliamps where "
                         f"{unit['current']} was declared? (--unit current=mA)")
    if sign == "discharge_positive":
        cur = -cur
    soc = data["soc"][:, 0] if "soc" in data else None
    if soc is not None:
        ok = ~np.isnan(soc)
        if fmt == "monitor":
            soc = np.where(soc < 0, np.nan, soc)  # the firmware's "unknown"
            ok = ~np.isnan(soc)
        bad = np.nonzero(ok & ((soc < SOC_RANGE[0]) | (soc > SOC_RANGE[1])))[0]
        if len(bad):
            i = int(bad[0])
            raise TraceError(f"{where('soc', i)}: SOC {soc[i] * 100:.4g} % is outside {SOC_RANGE[0] * 100:g}..{SOC_RANGE[1] * 100:g} % "
                             f"(declared unit {unit['soc']})")
        if unit["soc"] == "%" and ok.sum() > 1 and np.nanmax(soc) <= 0.01:
            i = int(np.nonzero(ok)[0][0])
            raise TraceError(f"{where('soc', i)}: every SOC is at most 1 %: a fraction where % was declared? (--unit soc=fraction)")
    cells_v = cv
    if not single_cell and cv.shape[1] == 1 and cells > 1:
        cells_v = np.repeat(cv, cells, axis=1)  # one voltage for every cell
    temps_c = data["temp"] if data["temp"].shape[1] == temps else np.repeat(data["temp"], temps, axis=1)
    cool = None
    if "cool_in" in data or "cool_out" in data:
        if not ("cool_in" in data and "cool_out" in data):
            raise TraceError(f"{p}: row 1: coolant needs both {cols['cool_in']!r} and {cols['cool_out']!r}")
        cool = np.column_stack((data["cool_in"][:, 0], data["cool_out"][:, 0]))
    return Trace(str(p), fmt, t - t[0], cells_v, temps_c, cur, cool,
                 data["flow"][:, 0] if "flow" in data else None, unit["flow"], soc,
                 "the recording firmware's own SOC" if fmt == "monitor" else "the record's reference SOC",
                 data["pack"][:, 0] if "pack" in data else None, data["bus"][:, 0] if "bus" in data else None,
                 data["charger"][:, 0] if "charger" in data else None)


def expand(tr: Trace, cells: int, offset_mv: float = 2.0, r_mohm: float = 0.1, noise_mv: float = 1.0,
           temp_noise_k: float = 0.1, seed: int = 1) -> Trace:
    """A single-cell trace as a pack of `cells` identical series cells
    carrying the recorded current. Cell i reads
        v(t) + offset_i + dR_i * I(t) + noise_i(t)
    with offset_i ~ N(0, offset_mv) and dR_i ~ N(0, r_mohm) drawn once per
    cell (manufacturing spread of OCV and resistance) and noise_i(t) ~
    N(0, noise_mv) per sample (the front end's noise); every thermistor
    reads the recorded temperature plus N(0, temp_noise_k). All from one
    numpy generator seeded with `seed`, so a replay is reproducible. It
    does not model a capacity spread: every cell has the recorded cell's
    capacity, so the cells never drift apart."""
    if tr.cells_v.shape[1] != 1:
        raise TraceError(f"{tr.source}: expand needs a single-cell trace ({tr.cells_v.shape[1]} cell columns)")
    rng = np.random.default_rng(seed)
    off = offset_mv * 1e-3 * rng.standard_normal(cells)
    dr = r_mohm * 1e-3 * rng.standard_normal(cells)
    ns = len(tr.t_s)
    v = tr.cells_v[:, :1] + off + np.outer(np.nan_to_num(tr.current_a), dr) \
        + noise_mv * 1e-3 * rng.standard_normal((ns, cells))
    temps = tr.temps_c + temp_noise_k * rng.standard_normal(tr.temps_c.shape)
    out = Trace(**{**tr.__dict__, "cells_v": v, "temps_c": temps})
    out.pack_v = None
    out.expanded = ((tr.expanded + "; ") if tr.expanded else "") + (f"one cell expanded to {cells} in series: per-cell offset N(0, {offset_mv:g} mV), resistance "
                    f"spread N(0, {r_mohm:g} mOhm), noise N(0, {noise_mv:g} mV) per sample, thermistor noise "
                    f"N(0, {temp_noise_k:g} K), seed {seed}")
    return out


@dataclass
class Ticks:
    """A trace at the firmware's tick: the newest sample at or before each
    tick (sample and hold), or a gap."""
    t_s: np.ndarray
    sample: np.ndarray  # index of the sample each tick holds
    gap: np.ndarray  # bool: no reading for this tick
    max_gap_s: float

    @property
    def held(self) -> int:
        """Ticks (not gaps) that repeat the sample the tick before them held."""
        rep = np.zeros(len(self.sample), dtype=bool)
        rep[1:] = self.sample[1:] == self.sample[:-1]
        return int((rep & ~self.gap).sum())


def resample(tr: Trace, tick_s: float, max_gap_s: float | None = None) -> Ticks:
    """Ticks k*tick_s from the first sample to the last. A tick holds the
    newest sample at or before it; it is a gap when that sample is older
    than max_gap_s (default: twice the median sample period, at least two
    ticks) or misses a sensor value."""
    period = float(np.median(np.diff(tr.t_s))) if len(tr.t_s) > 1 else tick_s
    if max_gap_s is None:
        max_gap_s = max(2 * period, 2 * tick_s)
    n = int(np.floor(tr.t_s[-1] / tick_s + 1e-9)) + 1
    t = np.arange(n) * tick_s
    idx = np.searchsorted(tr.t_s, t + 1e-6, side="right") - 1
    missing = np.isnan(tr.cells_v).any(axis=1) | np.isnan(tr.temps_c).any(axis=1) | np.isnan(tr.current_a)
    if tr.coolant_c is not None:
        missing |= np.isnan(tr.coolant_c).any(axis=1)
    gap = (t - tr.t_s[idx] > max_gap_s + 1e-9) | missing[idx]
    return Ticks(t, idx, gap, max_gap_s)


def sample_period_s(tr: Trace) -> float:
    return float(np.median(np.diff(tr.t_s))) if len(tr.t_s) > 1 else 0.0


def replay_tick_ms(tr: Trace, config_tick_ms: int) -> int:
    """The tick a replay runs at unless told otherwise: the configuration's,
    or the record's median sample period when that is longer (at most
    1 s, in 10 ms steps). Why: the firmware's STUCK_READING row trips when
    a cell channel repeats the exact same count for ten scans, so a sample
    held over many ticks would read to it as a stuck front end, not as the
    slower logger it is."""
    period_ms = sample_period_s(tr) * 1000
    if period_ms <= config_tick_ms:
        return config_tick_ms
    return int(min(1000, max(config_tick_ms, round(period_ms / 10) * 10)))


def interpolate(tr: Trace, tick_s: float, max_gap_s: float | None = None) -> Trace:
    """A single-cell trace at the tick, linearly interpolated between
    neighbouring samples (before expand(), whose per-sample noise then is
    per-scan front-end noise). Between samples further apart than
    max_gap_s (default as resample()) or next to a missing value every
    value is missing: a gap stays a gap."""
    if max_gap_s is None:
        max_gap_s = max(2 * sample_period_s(tr), 2 * tick_s)
    n = int(np.floor(tr.t_s[-1] / tick_s + 1e-9)) + 1
    t = np.arange(n) * tick_s
    hi = np.clip(np.searchsorted(tr.t_s, t - 1e-9, side="left"), 1, len(tr.t_s) - 1) if len(tr.t_s) > 1 else np.zeros(n, int)
    lo = hi - 1 if len(tr.t_s) > 1 else hi
    span = tr.t_s[hi] - tr.t_s[lo]
    w = np.where(span > 0, (t - tr.t_s[lo]) / np.where(span > 0, span, 1), 0.0).clip(0, 1)
    gap = span > max_gap_s + 1e-9

    def lerp(a):
        if a is None:
            return None
        a2 = a if a.ndim == 2 else a[:, None]
        out = a2[lo] + (a2[hi] - a2[lo]) * w[:, None]
        out[gap] = np.nan
        return out if a.ndim == 2 else out[:, 0]

    return Trace(tr.source, tr.fmt, t, lerp(tr.cells_v), lerp(tr.temps_c), lerp(tr.current_a), lerp(tr.coolant_c),
                 lerp(tr.flow), tr.flow_unit, lerp(tr.soc_ref), tr.soc_label, None, lerp(tr.bus_v),
                 None if tr.charger is None else tr.charger[lo], f"linearly interpolated from {sample_period_s(tr):g} s samples to the tick")
