"""Open-circuit voltage (OCV) versus state of charge, per chemistry, 25 degC.

Computed (not measured, not digitised) from published electrode
open-circuit-potential fits as shipped in PyBaMM parameter sets:
OCV(SOC) = U_positive(y(SOC)) - U_negative(x(SOC)) over the stoichiometry
window PyBaMM computes for the set. The derivation script is kept as
host_tools/ocv_derive.py (numpy only) and reproduces every point.
"""
import numpy as np

# =====================================================================================
# LFP / graphite  (LiFePO4 positive, graphite negative)
# -------------------------------------------------------------------------------------
# Source: PyBaMM parameter set "Prada2013"
#   repository: github.com/pybamm-team/PyBaMM
#   file:       src/pybamm/input/parameters/lithium_ion/Prada2013.py
#   cell:       A123 ANR26650M1 (2.3 Ah cylindrical LFP/graphite) as parameterised in
#     E. Prada, D. Di Domenico, Y. Creff, J. Bernard, V. Sauvant-Moynot, F. Huet,
#     "A Simplified Electrochemical and Thermal Aging Model of LiFePO4-Graphite Li-ion
#     Batteries: Power and Capacity Fade Simulations", J. Electrochem. Soc. 160(4)
#     A616-A628 (2013), doi:10.1149/2.053304jes
#   Prada2013 gives no OCP functions itself; PyBaMM substitutes:
#   * positive OCP  LFP_ocp_Afshar2017(sto) =
#         3.4077 - 0.020269*sto + 0.5*exp(-150*sto) - 0.9*exp(-30*(1-sto))
#     from S. Afshar, K. Morris, A. Khajepour, "Efficient electrochemical model for
#     lithium-ion cells", arXiv:1709.03970 (2017)
#   * negative OCP  graphite_LGM50_ocp_Chen2020(sto) =
#         1.9793*exp(-39.3631*sto) + 0.2482 - 0.0909*tanh(29.8538*(sto-0.1234))
#         - 0.04478*tanh(14.9159*(sto-0.2769)) - 0.0205*tanh(30.4444*(sto-0.6103))
#     from Chen et al. 2020 (full reference in the NMC block below; this is the
#     LG M50 graphite-SiOx fit, NOT a graphite measured in an LFP cell).
# Derivation (derive.py): electrode capacities Q = F*eps*L*A*c_max/3600 and cyclable
#   lithium from the set's initial concentrations (neg 0.81*30555, pos 0.0038*22806
#   mol/m3; eps_n=0.58, L_n=34 um, eps_p=0.374, L_p=80 um, A=0.18 m2); stoichiometry
#   window found where U_p(y)-U_n(x) equals the voltage limits with Li conserved;
#   OCV evaluated at 41 evenly spaced SOC points, linear in x and y between limits.
#   Window used for LFP_OCV: lower limit 2.5 V (CHANGED from the set's 2.0 V, to match
#   the 2.5 V discharge cut-off of typical large prismatic LFP cells, e.g. 2.5 V
#   (>0 degC) in the Lishen LP54173207 spec cited at the end), upper 3.6 V
#   (the set's own value):  x_0=0.03545, x_100=0.81004, y_100=0.00376, y_0=0.68776; capacity between limits 2.2516 Ah
# Caveats: the plateau (3.26-3.31 V from 40 % to 95 %) is a model composite; it lies
#   roughly 30-65 mV below measured LFP cells (e.g. the measured C/32 pseudo-OCV
#   breakpoints for a Lithium Werks APR18650M1B LFP cell are 3.277 V @ 29.7 % SOC and
#   3.351 V @ 98.3 % SOC: S. Sunil, K.R. Pattipati, B. Balasingam, "Piecewise Linear
#   Approximation of Battery Open-Circuit Voltage Characteristics Using Dynamic
#   Programming", IEEE Trans. Instrum. Meas. (2025); table in README.md of
#   github.com/soorajsunil/Piecewise-Battery-OCV -- only 10 breakpoints, so not used
#   here).  The 10-40 % region slopes more (3.03->3.26 V) than a real LFP cell
#   mainly because of the Chen2020 graphite fit (the Afshar LFP fit is
#   nearly flat there).  No hysteresis.
LFP_OCV = [
    (0.000, 2.5000),
    (0.025, 2.7640),
    (0.050, 2.8926),
    (0.075, 2.9671),
    (0.100, 3.0315),
    (0.125, 3.0959),
    (0.150, 3.1419),
    (0.175, 3.1649),
    (0.200, 3.1759),
    (0.225, 3.1834),
    (0.250, 3.1914),
    (0.275, 3.2016),
    (0.300, 3.2140),
    (0.325, 3.2273),
    (0.350, 3.2394),
    (0.375, 3.2491),
    (0.400, 3.2560),
    (0.425, 3.2605),
    (0.450, 3.2635),
    (0.475, 3.2653),
    (0.500, 3.2665),
    (0.525, 3.2674),
    (0.550, 3.2680),
    (0.575, 3.2685),
    (0.600, 3.2690),
    (0.625, 3.2695),
    (0.650, 3.2702),
    (0.675, 3.2717),
    (0.700, 3.2754),
    (0.725, 3.2834),
    (0.750, 3.2954),
    (0.775, 3.3053),
    (0.800, 3.3103),
    (0.825, 3.3124),
    (0.850, 3.3133),
    (0.875, 3.3138),
    (0.900, 3.3142),
    (0.925, 3.3147),
    (0.950, 3.3166),
    (0.975, 3.3371),
    (1.000, 3.6000),
]

# =====================================================================================
# NMC811 / graphite-SiOx  (LG M50, INR21700-M50, 5 Ah)
# -------------------------------------------------------------------------------------
# Source: PyBaMM parameter set "Chen2020"
#   repository: github.com/pybamm-team/PyBaMM
#   file:       src/pybamm/input/parameters/lithium_ion/Chen2020.py
#   paper: C.-H. Chen, F. Brosa Planella, K. O'Regan, D. Gastol, W.D. Widanage,
#     E. Kendrick, "Development of Experimental Techniques for Parameterization of
#     Multi-scale Lithium-ion Battery Models", J. Electrochem. Soc. 167, 080534 (2020),
#     doi:10.1149/1945-7111/ab9050  (OCP fits to GITT/pseudo-OCV half-cell data of
#     electrodes harvested from LG M50 cells)
#   * positive OCP  nmc_LGM50_ocp_Chen2020(sto) =
#         -0.8090*sto + 4.4875 - 0.0428*tanh(18.5138*(sto-0.5542))
#         - 17.7326*tanh(15.7890*(sto-0.3117)) + 17.5842*tanh(15.9308*(sto-0.3120))
#   * negative OCP  graphite_LGM50_ocp_Chen2020(sto)  (formula in the LFP block)
# Derivation (derive.py): as for LFP, with the set's own values: A=0.065*1.58 m2,
#   eps_n=0.75, L_n=85.2 um, c_max_n=33133, c0_n=29866; eps_p=0.665, L_p=75.6 um,
#   c_max_p=63104, c0_p=17038 mol/m3; voltage limits 2.5 V / 4.2 V (set's own, = LG M50
#   datasheet window):  x_0=0.02635, x_100=0.91062, y_100=0.26385, y_0=0.85397; capacity between limits 5.1532 Ah
#   (These are PyBaMM's computed limits, i.e. what PyBaMM simulations with Chen2020
#   use; I did not check them against any limits quoted in the paper itself.)
# Caveat: because 0 % SOC is defined at the 2.5 V cut-off, OCV is 2.50 V at 0 % and
#   ~3.1 V by 5 %; if your simulator's 0 % SOC should sit near 3.0-3.3 V, re-run
#   ocv_table(CHEN2020, V_min=3.0) in derive.py rather than shifting this table.
NMC_OCV = [
    (0.000, 2.5000),
    (0.025, 2.9212),
    (0.050, 3.1094),
    (0.075, 3.2107),
    (0.100, 3.2959),
    (0.125, 3.3787),
    (0.150, 3.4339),
    (0.175, 3.4641),
    (0.200, 3.4852),
    (0.225, 3.5056),
    (0.250, 3.5286),
    (0.275, 3.5545),
    (0.300, 3.5814),
    (0.325, 3.6068),
    (0.350, 3.6290),
    (0.375, 3.6487),
    (0.400, 3.6670),
    (0.425, 3.6855),
    (0.450, 3.7054),
    (0.475, 3.7273),
    (0.500, 3.7509),
    (0.525, 3.7750),
    (0.550, 3.7983),
    (0.575, 3.8200),
    (0.600, 3.8406),
    (0.625, 3.8624),
    (0.650, 3.8896),
    (0.675, 3.9206),
    (0.700, 3.9479),
    (0.725, 3.9713),
    (0.750, 3.9943),
    (0.775, 4.0181),
    (0.800, 4.0421),
    (0.825, 4.0640),
    (0.850, 4.0809),
    (0.875, 4.0911),
    (0.900, 4.0967),
    (0.925, 4.1048),
    (0.950, 4.1236),
    (0.975, 4.1564),
    (1.000, 4.2000),
]



TABLES = {"LFP": LFP_OCV, "NMC": NMC_OCV}


class OcvCurve:
    """Vectorised OCV lookup (volts) from SOC, linear between points.

    Outside 0..1 (over-charge and over-discharge, which fault injection
    reaches) the end segments are extended linearly: an extrapolation for
    the simulator's sake, not part of the cited data.
    """

    def __init__(self, chemistry: str):
        pts = TABLES[chemistry]
        self.soc = np.array([p[0] for p in pts])
        self.volts = np.array([p[1] for p in pts])
        self.lo_slope = (self.volts[1] - self.volts[0]) / (self.soc[1] - self.soc[0])
        self.hi_slope = (self.volts[-1] - self.volts[-2]) / (self.soc[-1] - self.soc[-2])

    def __call__(self, soc):
        v = np.interp(soc, self.soc, self.volts)
        if np.ndim(soc) == 1 and np.minimum.reduce(soc) >= 0.0 and np.maximum.reduce(soc) <= 1.0:
            # within the table (the plant's every tick): the extensions and
            # the clip change nothing, so they are skipped (same result)
            return v
        v = np.where(soc > 1.0, self.volts[-1] + (soc - 1.0) * self.hi_slope, v)
        v = np.where(soc < 0.0, self.volts[0] + soc * self.lo_slope, v)
        return np.clip(v, 0.0, 5.0)

    def soc_at(self, volts):
        return np.interp(volts, self.volts, self.soc)
