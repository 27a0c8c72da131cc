"""Fit the firmware's diffusion lag (and the plant's slow branch) to the
electrochemical-model TUNE traces only (tests/physics_traces, set "tune":
PyBaMM SPMe at constant rates; the DFN holdout traces are never read here).

What is fitted, and why this form: under current a particle's surface is
emptied (or filled) ahead of its bulk, and the voltage reads the surface.
The gap between the surface SOC and the bulk (true) SOC grows with the
current and settles with the solid-diffusion time: a first-order lag of
the C-rate, in SOC units,
    true_soc = table_soc(V - I*R0) - k_f * lag(C-rate, tau_f) - k_s * lag(C-rate, tau_s)
(I > 0 charging; R0 the firmware's own soc_cell_r_uohm for the pack).
Two lags: a fast one (seconds: the electrolyte and charge-transfer
overpotentials beyond the firmware's R0) and a slow one (minutes: solid
diffusion). Stated in SOC (not mV) because it is a concentration gap: it does not
depend on how steep the OCV curve is where it is read.
Samples used: where the firmware reads the table: discharging within
WINDOW_V of its empty threshold, and the rests on the lower knee (below
KNEE_V) that follow (the relaxation is what sets the taus; the
constant-rate discharges set the ks).

    python -m host_tools.physics_fit     # prints k (cpct per C) and tau (ms)
"""
from __future__ import annotations

import gzip
import json
import math

import numpy as np

from host_tools.ocv import OcvCurve
from host_tools.trace_check import CELL_AH, TRACES

# The firmware's R0 for the replayed pack: cell_r_uohm_ah of the preset
# (firmware/bms/chemistry.py) -> Ohm for the model cell.
R0_OHM_AH = {"lfp": 0.030, "nmc": 0.060}
# where the OCV table is read (below the plateau / the steep low end)
KNEE_V = {"lfp": 3.10, "nmc": 3.45}
# the firmware's empty synchronisation threshold (preset soc_empty_mv)
EMPTY_V = {"lfp": 2.90, "nmc": 3.10}
WINDOW_V = 0.10  # discharge samples within this of EMPTY_V
TAU_FAST_S = np.unique(np.round(np.logspace(0, math.log10(60), 25)))
TAU_SLOW_S = np.unique(np.round(np.logspace(math.log10(30), math.log10(3000), 50)))


def load(name):
    with gzip.open(TRACES / (name + ".csv.gz"), "rt") as f:
        next(f)
        a = np.array([[float(x) for x in line.split(",")] for line in f])
    return a[:, 0], a[:, 1], a[:, 2], a[:, 4]


def lag(t, c, tau):
    out = np.zeros_like(c)
    y = 0.0
    for k in range(1, len(t)):
        a = math.exp(-(t[k] - t[k - 1]) / tau)
        y = y * a + c[k] * (1 - a)
        out[k] = y
    return out


def fit(chem):
    ocv = OcvCurve(chem.upper())
    tr = json.loads((TRACES / "provenance.json").read_text())["traces"]
    names = sorted(n for n, m in tr.items() if m["set"] == "tune" and n.startswith(chem))
    data = []
    for n in names:
        t, i, v, soc = load(n)
        c = i / CELL_AH[chem]
        r0 = R0_OHM_AH[chem] / CELL_AH[chem]
        table = ocv.soc_at(v - i * r0)
        near = (np.abs(v - EMPTY_V[chem]) <= WINDOW_V) & (i < -1e-6)
        resting = (np.abs(i) <= 1e-6) & (v < KNEE_V[chem])
        data.append((t, c, table - soc, near | resting))
    lags = {}
    for tau in np.unique(np.concatenate([TAU_FAST_S, TAU_SLOW_S])):
        lags[tau] = [lag(t, c, tau)[use] for t, c, _, use in data]
    y = np.concatenate([r[use] for _, _, r, use in data])
    best = None
    for tf in TAU_FAST_S:
        xf = np.concatenate(lags[tf])
        for ts in TAU_SLOW_S:
            if ts <= 2 * tf:
                continue
            xs = np.concatenate(lags[ts])
            a = np.stack([xf, xs], axis=1)
            (kf, ks), *_ = np.linalg.lstsq(a, y, rcond=None)  # resid = kf*lag_f + ks*lag_s
            if kf < 0 or ks < 0:
                continue
            rms = float(np.sqrt(((y - a @ np.array([kf, ks])) ** 2).mean()))
            if best is None or rms < best[0]:
                best = (rms, float(kf), float(tf), float(ks), float(ts), len(y))
    return names, best


def main():
    for chem in CELL_AH:
        names, (rms, kf, tf, ks, ts, n) = fit(chem)
        print("%s: fast k = %.0f cpct per C, tau = %.0f s; slow (diffusion) k = %.0f cpct per C, tau = %.0f s;"
              " residual %.2f %% SOC RMS over %d samples of %s"
              % (chem, kf * 10000, tf, ks * 10000, ts, rms * 100, n, ", ".join(names)))


if __name__ == "__main__":
    main()
