"""Cell traces from electrochemical models (PyBaMM), for checking the
firmware's SOC synchronisations against physics that is not our own
equivalent-circuit plant.

Runs only in the separate venv `.venv-physics` (requirements-physics.txt,
PyBaMM and its dependencies pinned): `make physics-traces`. The traces are
committed (tests/physics_traces/*.csv.gz with provenance.json), so `make
test` never needs PyBaMM.

Two sets, kept apart on purpose:
- tune: SPMe (single particle model with electrolyte) at constant rates
  0.25/0.5/1C. host_tools/physics_fit.py fits the firmware's and the
  plant's slow (diffusion) branch to these only.
- holdout: DFN (Doyle-Fuller-Newman, the full pseudo-2D model) at
  0.35/0.75C and a pulse profile. Never used to choose a parameter; only
  the check (host_tools/trace_check.py) reads them.

Parameter sets: "Prada2013" (LFP, A123 ANR26650M1) and "Chen2020" (NMC811,
LG M50): the same sets host_tools/ocv.py derives the OCV tables from, so
the table's 0..100 % is the trace's 0..100 %.
True SOC: from the volume-averaged negative particle stoichiometry x,
SOC = (x - x_0) / (x_100 - x_0) with ocv.py's window (x_0, x_100).
Columns: t_s, current_a (+ = charging, as the firmware counts), voltage_v,
temp_c (the models run isothermal at 25 degC), soc (true).
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pybamm

OUT = Path(__file__).resolve().parent.parent / "tests" / "physics_traces"

# (parameter set, x_0, x_100 from host_tools/ocv.py, empty cut-off V, top V)
CHEM = {
    "lfp": ("Prada2013", 0.03545, 0.81004, 2.8, 3.6),
    "nmc": ("Chen2020", 0.02635, 0.91062, 3.0, 4.2),
}
TUNE = [("spme", 0.25), ("spme", 0.5), ("spme", 1.0)]
HOLDOUT = [("dfn", 0.35), ("dfn", 0.75), ("dfn", "pulses")]
MODELS = {"spme": pybamm.lithium_ion.SPMe, "dfn": pybamm.lithium_ion.DFN}


def steps(rate, v_cut, v_top):
    """Full -> empty at the rate -> rest -> CC-CV charge -> rest -> empty
    again -> rest: two empty synchronisations and one full one."""
    if rate == "pulses":
        # a household-like profile: 1C bursts, a light base load, short
        # charge pulses (net ~0.045 C*h per cycle, 26 cycles reach the
        # cut-off and then keep pulsing at the bottom)
        cyc = [
            "Discharge at 1C for 2 minutes or until %g V" % v_cut,
            "Rest for 2 minutes",
            "Discharge at 0.2C for 5 minutes or until %g V" % v_cut,
            "Charge at 0.3C for 1 minute or until %g V" % v_top,
        ]
        down = cyc * 26
    else:
        down = ["Discharge at %gC until %g V" % (rate, v_cut)]
    return (["Rest for 10 minutes"] + down + ["Rest for 1 hour",
            "Charge at 0.5C until %g V" % v_top, "Hold at %g V until C/20" % v_top,
            "Rest for 30 minutes"] + down + ["Rest for 30 minutes"])


def run(chem, model, rate):
    pset, x0, x100, v_cut, v_top = CHEM[chem]
    pv = pybamm.ParameterValues(pset)
    period = "5 seconds" if rate == "pulses" else "10 seconds"
    exp = pybamm.Experiment(steps(rate, v_cut, v_top), period=period)
    sim = pybamm.Simulation(MODELS[model](), parameter_values=pv, experiment=exp)
    sol = sim.solve(initial_soc=1.0)
    t = sol["Time [s]"].entries
    i = -sol["Current [A]"].entries  # PyBaMM: + = discharge
    v = sol["Voltage [V]"].entries
    x = sol["Average negative particle stoichiometry"].entries
    temp = sol["Volume-averaged cell temperature [K]"].entries - 273.15
    rows = ["t_s,current_a,voltage_v,temp_c,soc"]
    last = -1.0
    for k in range(len(t)):
        if t[k] - last < 0.5:  # step boundaries repeat a time point
            continue
        last = t[k]
        soc = (x[k] - x0) / (x100 - x0)
        rows.append("%.1f,%.5f,%.5f,%.2f,%.5f" % (t[k], i[k], v[k], temp[k], soc))
    return rows, {"parameter_set": pset, "model": MODELS[model].__name__, "period": period,
                  "protocol": steps(rate, v_cut, v_top) if rate != "pulses" else "rest 10 min; 26 x [" +
                  "; ".join(steps(rate, v_cut, v_top)[1:5]) + "]; rest 1 h; CC 0.5C-CV C/20; rest 30 min; again; rest 30 min",
                  "soc_window_x0_x100": [x0, x100], "rows": len(rows) - 1}


def main(argv=None):
    OUT.mkdir(parents=True, exist_ok=True)
    prov = {"generator": "host_tools/physics_gen.py", "pybamm": pybamm.__version__,
            "seed": None, "note": "deterministic solves (no random input); isothermal 25 degC", "traces": {}}
    for chem in CHEM:
        for group, cases in (("tune", TUNE), ("holdout", HOLDOUT)):
            for model, rate in cases:
                name = "%s_%s_%s" % (chem, model, rate if rate == "pulses" else "%gc" % rate)
                name = name.replace(".", "p")
                rows, meta = run(chem, model, rate)
                meta["set"] = group
                with gzip.GzipFile(OUT / (name + ".csv.gz"), "wb", mtime=0) as f:
                    f.write(("\n".join(rows) + "\n").encode())
                prov["traces"][name] = meta
                print(name, group, meta["rows"], "rows", file=sys.stderr)
    (OUT / "provenance.json").write_text(json.dumps(prov, indent=1) + "\n")


if __name__ == "__main__":
    main()
