"""Reproduce the OCV-vs-SOC tables in host_tools/ocv.py.

Pure numpy (no PyBaMM needed).  Run: .venv/bin/python host_tools/ocv_derive.py
If PyBaMM is importable, the stoichiometry windows and OCVs are cross-checked
against pybamm.lithium_ion.get_min_max_stoichiometries / the parameter set's own
OCP functions.

Method (same as PyBaMM's ElectrodeSOH "Q_Li" formulation):
  * electrode capacities  Q_k = F * eps_k * L_k * A * c_max_k / 3600   [Ah]
  * cyclable lithium      Q_Li = x_init*Q_n + y_init*Q_p             [Ah]
    (x_init, y_init = initial concentration / max concentration)
  * x_100 solves  U_p(y(x)) - U_n(x) = V_max,  x_0 solves ... = V_min,
    with y(x) = (Q_Li - x*Q_n)/Q_p   (lithium conservation)
  * y_100 = y(x_100), y_0 = y(x_0)
  * at SOC z:  x = x_0 + z*(x_100 - x_0),  y = y_0 + z*(y_100 - y_0)
               OCV(z) = U_p(y) - U_n(x)        (25 degC, entropic terms = 0)
"""
import numpy as np

F = 96485.33212  # C/mol (pybamm.constants.F)


# ---------------------------------------------------------------- OCP functions
# Published fits (Chen et al. 2020; Afshar et al. 2017) in the numpy form used by PyBaMM,
#   src/pybamm/input/parameters/lithium_ion/Chen2020.py  and  Prada2013.py
def graphite_LGM50_ocp_Chen2020(sto):
    return (1.9793 * np.exp(-39.3631 * sto) + 0.2482
            - 0.0909 * np.tanh(29.8538 * (sto - 0.1234))
            - 0.04478 * np.tanh(14.9159 * (sto - 0.2769))
            - 0.0205 * np.tanh(30.4444 * (sto - 0.6103)))


def nmc_LGM50_ocp_Chen2020(sto):
    return (-0.8090 * sto + 4.4875
            - 0.0428 * np.tanh(18.5138 * (sto - 0.5542))
            - 17.7326 * np.tanh(15.7890 * (sto - 0.3117))
            + 17.5842 * np.tanh(15.9308 * (sto - 0.3120)))


def LFP_ocp_Afshar2017(sto):
    return (3.4077 - 0.020269 * sto + 0.5 * np.exp(-150 * sto)
            - 0.9 * np.exp(-30 * (1 - sto)))


# ------------------------------------------------------------ parameter sets
# Values copied from PyBaMM get_parameter_values() of each set.
CHEN2020 = dict(  # LG M50 (INR21700-M50, 5 Ah) NMC811 / graphite-SiOx
    U_n=graphite_LGM50_ocp_Chen2020, U_p=nmc_LGM50_ocp_Chen2020,
    A=0.065 * 1.58,
    L_n=8.52e-5, eps_n=0.75, cmax_n=33133.0, c0_n=29866.0,
    L_p=7.56e-5, eps_p=0.665, cmax_p=63104.0, c0_p=17038.0,
    V_min=2.5, V_max=4.2)

PRADA2013 = dict(  # A123 ANR26650M1 (2.3 Ah) LFP / graphite
    U_n=graphite_LGM50_ocp_Chen2020, U_p=LFP_ocp_Afshar2017,
    A=0.6 * 0.3,
    L_n=3.4e-5, eps_n=0.58, cmax_n=30555.0, c0_n=0.81 * 30555,
    L_p=8e-5, eps_p=0.374, cmax_p=22806.0, c0_p=0.0038 * 22806,
    V_min=2.0, V_max=3.6)


def _bisect(f, lo, hi, tol=1e-13):
    flo = f(lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


def stoich_window(p, V_min=None, V_max=None):
    V_min = p["V_min"] if V_min is None else V_min
    V_max = p["V_max"] if V_max is None else V_max
    Q_n = F * p["eps_n"] * p["L_n"] * p["A"] * p["cmax_n"] / 3600
    Q_p = F * p["eps_p"] * p["L_p"] * p["A"] * p["cmax_p"] / 3600
    Q_Li = p["c0_n"] / p["cmax_n"] * Q_n + p["c0_p"] / p["cmax_p"] * Q_p
    y_of_x = lambda x: (Q_Li - x * Q_n) / Q_p
    ocv = lambda x: p["U_p"](y_of_x(x)) - p["U_n"](x)
    # feasible x range keeps 0 < y < 1
    x_lo = max(1e-6, (Q_Li - Q_p * (1 - 1e-6)) / Q_n)
    x_hi = min(1 - 1e-6, (Q_Li - 1e-6 * Q_p) / Q_n)
    x_100 = _bisect(lambda x: ocv(x) - V_max, x_lo, x_hi)
    x_0 = _bisect(lambda x: ocv(x) - V_min, x_lo, x_hi)
    return x_0, x_100, y_of_x(x_100), y_of_x(x_0), Q_n * (x_100 - x_0)


def ocv_table(p, n=41, V_min=None, V_max=None):
    x_0, x_100, y_100, y_0, Q = stoich_window(p, V_min, V_max)
    z = np.linspace(0.0, 1.0, n)
    x = x_0 + z * (x_100 - x_0)
    y = y_0 + z * (y_100 - y_0)
    v = p["U_p"](y) - p["U_n"](x)
    return z, v, (x_0, x_100, y_100, y_0, Q)


def fmt(name, z, v):
    rows = ",\n".join(f"    ({zi:.3f}, {vi:.4f})" for zi, vi in zip(z, v))
    return f"{name} = [\n{rows},\n]\n"


if __name__ == "__main__":
    cases = [
        ("LFP_OCV", PRADA2013, dict(V_min=2.5)),          # 2.5-3.6 V window
        ("LFP_OCV_PYBAMM_DEFAULT_WINDOW", PRADA2013, {}),  # 2.0-3.6 V window
        ("NMC_OCV", CHEN2020, {}),                        # 2.5-4.2 V window
    ]
    for name, p, kw in cases:
        z, v, (x0, x100, y100, y0, Q) = ocv_table(p, **kw)
        assert np.all(np.diff(v) > 0), name + " not monotonic"
        print(f"# {name}: x_0={x0:.5f} x_100={x100:.5f} y_100={y100:.5f} "
              f"y_0={y0:.5f}  capacity between limits={Q:.4f} Ah")
        print(fmt(name, z, v))

    try:  # optional cross-check against PyBaMM itself
        import pybamm
        for name, set_name, kw in [("LFP_OCV", "Prada2013", {"V_min": 2.5}),
                                   ("LFP_OCV_PYBAMM_DEFAULT_WINDOW", "Prada2013", {}),
                                   ("NMC_OCV", "Chen2020", {})]:
            pv = pybamm.ParameterValues(set_name)
            if "V_min" in kw:
                pv.update({"Lower voltage cut-off [V]": kw["V_min"],
                           "Open-circuit voltage at 0% SOC [V]": kw["V_min"]})
            x0, x100, y100, y0 = pybamm.lithium_ion.get_min_max_stoichiometries(pv)
            p = PRADA2013 if set_name == "Prada2013" else CHEN2020
            z, v, w = ocv_table(p, **kw)
            Up = pv["Positive electrode OCP [V]"]; Un = pv["Negative electrode OCP [V]"]
            xs = x0 + z * (x100 - x0); ys = y0 + z * (y100 - y0)
            v_pb = np.array([pybamm.Scalar(0).evaluate() +
                             (Up(pybamm.Scalar(yy)) - Un(pybamm.Scalar(xx))).evaluate()
                             for xx, yy in zip(xs, ys)]).ravel()
            print(f"# pybamm check {name}: window diff "
                  f"{np.max(np.abs(np.array([x0, x100, y100, y0]) - np.array(w[:4]))):.2e}, "
                  f"max |dV| {np.max(np.abs(v_pb - v)) * 1000:.3f} mV")
    except ImportError:
        print("# pybamm not installed; skipped cross-check")
