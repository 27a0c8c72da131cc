"""Writes tests/data/single_cell_lfp.csv: one 100 Ah LFP cell from the
project's own plant (host_tools/plant.py, equivalent circuit and lumped
thermal model; no public cell data is shipped), sampled every 5 s as a
cell tester would log it: 0.5C discharge from 60 % for 60 min, 20 min
rest, 0.5C CC-CV charge to 3.55 V until the current falls below 0.05C,
20 min rest. Columns: time_s, current_a (+ = charge), cell_v (1 mV
resolution), temp_c (0.1 K), soc_ref (the model's true SOC, %).
Run: .venv/bin/python tests/data/make_single_cell.py"""
import copy
from pathlib import Path

from host_tools import scenario
from host_tools.plant import Pack

ROOT = Path(__file__).resolve().parents[2]
sc = copy.deepcopy(scenario.load(ROOT / "scenarios" / "default.toml"))
sc.pack.cells, sc.pack.temps = 1, 1
sc.pack.initial_soc = 0.6
sc.pack.capacity_spread = sc.pack.r0_spread = 0.0
pack = Pack(sc)
dt, every = 1.0, 5
rows = ["time_s,current_a,cell_v,temp_c,soc_ref"]
t = 0.0
phases = [("dsg", 3600), ("rest", 1200), ("chg", 4 * 3600), ("rest", 1200)]
for kind, dur in phases:
    t0 = t
    while t - t0 < dur:
        if kind == "dsg":
            pack.current_a = -50.0
        elif kind == "chg":
            pack.current_a = max(0.0, min(50.0, pack.cv_current(3.55)))
            if pack.current_a < 5.0:
                break
        else:
            pack.current_a = 0.0
        if int(round(t)) % every == 0:
            rows.append(f"{t:.0f},{pack.current_a:.2f},{float(pack.cell_v()[0]):.3f},{float(pack.temp[0]):.1f},"
                        f"{pack.pack_soc() * 100:.2f}")
        pack.step(dt, t)
        t += dt
(Path(__file__).parent / "single_cell_lfp.csv").write_text("\n".join(rows) + "\n")
print(len(rows) - 1, "samples,", t / 3600, "h")
