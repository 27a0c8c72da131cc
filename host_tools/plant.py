"""The simulated pack: cells, heat, coolant loop, contactors, charger and load.

Physics in SI units with numpy arrays over the cells. Parameters without a
cited source are engineering assumptions and say so.
"""
from __future__ import annotations

import math

import numpy as np

from host_tools.ocv import OcvCurve

# Coolant: 4 L of 50/50 ethylene glycol/water; density ~1070 kg/m3 and
# specific heat ~3300 J/(kg K) near 20 degC (typical values from glycol
# coolant property tables, e.g. the ASHRAE Handbook - Fundamentals).
COOLANT_J_PER_K = 4.0e-3 * 1070 * 3300
COOLANT_CP = 3300.0
COOLANT_RHO = 1070.0
# Pump: a 12 V auxiliary coolant pump of the Bosch 0392023004 class, rated
# 13 W and about 15 L/min (ratings as listed on the epicEFI wiki's "Coolant
# Pump" page). Flow taken proportional to speed ~ duty, power ~ speed^3
# (pump affinity laws).
PUMP_MAX_LPM = 15.0
PUMP_MAX_FLOW_M3_S = PUMP_MAX_LPM / 60000
PUMP_MAX_W = 13.0
PUMP_MIN_DUTY = 0.1  # below this the pump does not turn (assumed)
# Hall flow meter in the loop: ~7.5 Hz per L/min (YF-S201 class, as
# commonly published; the firmware's flow_hz_full = 75 matches it).
FLOW_HZ_PER_LPM = 7.5
# Conductances (assumptions, not measurements): cell to plate with coolant
# flowing / stagnant, cell to cabinet air, cell to neighbour, radiator to
# ambient with / without flow. Chosen so that a 1C load keeps a liquid-cooled
# 100 Ah LFP cell within a few K of its coolant and the pack within ~2 K,
# the order reported for liquid-cooled 100 Ah BESS cells (Sci. Rep. 2025,
# "Multi-scale modelling of battery cooling systems for grid frequency
# regulation": temperature differences below 2 K).
G_PLATE_FLOW_W_K = 4.0
G_PLATE_STILL_W_K = 0.4
G_AMBIENT_W_K = 0.15
G_NEIGHBOUR_W_K = 1.0
G_RADIATOR_W_K = 150.0
G_RADIATOR_STILL_W_K = 5.0
# Heater: a PTC coolant heater (assumed 1 kW, fed by the charge source).
HEATER_W = 1000.0
# DC link: inverter/charger capacitance and the precharge resistor (assumed).
BUS_CAP_F = 4.7e-3
PRECHARGE_OHM = 47.0
BUS_BLEED_TAU_S = 5.0
# The per-tick paths call the ufunc reductions that ndarray.sum()/.any()
# call, without their Python layers (same results).
_sum = np.add.reduce
_any = np.logical_or.reduce
# Surface-SOC lag per chemistry: under current a particle's surface empties
# (or fills) ahead of its bulk, and the OCV follows the surface, so the
# cell's OCV is taken at soc + k_f*lag(C-rate, tau_f) + k_s*lag(C-rate,
# tau_s). Source: host_tools/physics_fit.py fitted to PyBaMM 26.10.1.1 SPMe
# traces (tests/physics_traces, set "tune"; provenance.json) of the
# parameter sets the OCV tables come from: Prada2013 (LFP), Chen2020 (NMC);
# 0.16 / 0.15 % SOC RMS residual on the lower knee. (k: SOC fraction per C,
# tau: s.) The fast part stands for the electrolyte and charge-transfer
# overpotentials beyond R0, the slow one for solid diffusion. The same
# figures are the firmware presets' soc_lag_* / soc_diffusion_* keys: the
# plant makes the effect visible; the physics traces (host_tools/
# trace_check.py, DFN holdout) are what tests the firmware independently.
SURFACE_LAG = {"LFP": (0.0675, 15.0, 0.1097, 314.0), "NMC": (0.0473, 7.0, 0.0207, 148.0)}
# Contactor output bits (as in the firmware).
OUT_NEG, OUT_PRE, OUT_POS = 1, 2, 4


class Pack:
    def __init__(self, sc):
        p = sc.pack
        rng = np.random.default_rng(sc.seed)
        n = p.cells
        self.n = n
        self.ocv = OcvCurve(p.chemistry)
        self.cap_as = p.capacity_ah * 3600 * (1 + p.capacity_spread * rng.standard_normal(n))
        if p.capacity_range:
            # an exact max-min spread around the rating: evenly spaced, random order
            self.cap_as = p.capacity_ah * 3600 * (1 + p.capacity_range * (rng.permutation(n) / max(n - 1, 1) - 0.5))
        self.r0 = p.r0_ohm * (1 + p.r0_spread * rng.standard_normal(n)).clip(0.2)
        self.r1 = np.full(n, p.r1_ohm)
        self.tau = p.tau_s
        self.soc = np.clip(p.initial_soc + p.initial_soc_spread * rng.standard_normal(n), 0.0, 1.0)
        if p.initial_soc_range:
            # an exact max-min spread: evenly spaced SOCs in a random order
            self.soc = np.clip(p.initial_soc + p.initial_soc_range * (rng.permutation(n) / max(n - 1, 1) - 0.5), 0.0, 1.0)
        self.coulombic_eff = p.coulombic_efficiency
        # Sense wire (harness, connector, filter) resistance in the bleed
        # path: the bleed current flows through the two sense wires of its
        # cell, so a reading taken while bleeding is off by I x R per wire.
        self.sense_ohm = p.sense_resistance
        kf, tf, ks, ts = SURFACE_LAG[p.chemistry] if p.diffusion else (0.0, 1.0, 0.0, 1.0)
        self.lag_k = (kf, ks)
        self.lag_tau = (tf, ts)
        self.lag = [np.zeros(n), np.zeros(n)]  # C-rate lags per cell (fast, slow)
        self.ocv_now = self.ocv(self.soc)  # OCV at the present (surface) SOC, updated by step()
        self.v1 = np.zeros(n)
        self.temp = np.full(n, sc.thermal.initial_c)
        self.heat_cap = p.cell_heat_j_per_k
        self.balance_ohm = p.balance_ohm
        self.bleed = np.zeros(n, dtype=bool)
        self.self_discharge_a = np.zeros(n)
        self.current_a = 0.0  # pack current, + = charging
        self.ambient_c = sc.thermal.ambient_c
        self.ambient_swing_c = sc.thermal.daily_swing_c
        self.ambient_peak_h = sc.thermal.peak_hour
        self.heater_on = False
        self.heater_energy_j = 0.0
        self.coolant_c = sc.thermal.initial_c
        self.coolant_in_c = self.coolant_c
        self.coolant_out_c = self.coolant_c
        self.pump_duty = 0.0
        self.flow_pulses = 0.0
        self.flow_lpm = 0.0
        self.flow_factor = 1.0  # 1 = healthy loop; a leak or a seized pump lowers it
        self.pump_energy_j = 0.0
        self.bus_v = 0.0
        self.outputs = 0  # what the firmware commands
        self.physical = 0  # what the contactor tips actually do (= feedback)
        self.welded = False
        self.precharge_open = False
        self.short_ohm = 0.0  # load short across the bus (0 = none)
        self.internal_short_ohm = np.zeros(n)  # per cell (0 = none)
        self.balance_energy_j = 0.0
        # coolant position of each cell along the flow path, 0..1
        self.path = (np.arange(n) + 0.5) / n
        self._shorted = False  # any internal short this step (set by step())

    # -- electrical ---------------------------------------------------------
    def cell_v(self):
        i = self.cell_currents()
        return self.ocv_now + i * self.r0 + self.v1

    def bleed_currents(self):
        """Bleed current per cell: the cell across its bleed resistor and
        the two sense wires."""
        return self.bleed * (self.ocv_now / (self.balance_ohm + 2 * self.sense_ohm))

    def cell_currents(self):
        i = self.current_a - self.self_discharge_a
        if _any(self.bleed):
            i = i - self.bleed_currents()
        return i

    def sensed_v(self, v=None):
        """Cell voltages as the front end sees them: a bled cell's two sense
        wires drop I_bleed x R each (it reads low), and a neighbour shares
        one of those wires (it reads high). v: cell_v() if the caller has it."""
        if v is None:
            v = self.cell_v()
        if self.sense_ohm and _any(self.bleed):
            ib = self.bleed_currents()
            d = 2 * ib
            d[1:] -= ib[:-1]
            d[:-1] -= ib[1:]
            v = v - self.sense_ohm * d
        return v

    def pack_soc(self) -> float:
        """True SOC of the series pack: the charge it can still deliver
        before its first cell is empty, over that plus the charge it can
        still take before its first cell is full."""
        q = self.soc * self.cap_as
        out = float(q.min())
        room = float((self.cap_as - q).min())
        return out / (out + room) if out + room > 0 else 0.0

    def pack_capacity_ah(self) -> float:
        """Usable capacity of the series pack now: out + room, in Ah."""
        q = self.soc * self.cap_as
        return float(q.min() + (self.cap_as - q).min()) / 3600

    def pack_v(self):
        return float(self.cell_v().sum())

    def command(self, outputs: int):
        """Apply the firmware's contactor command; welded tips stay closed."""
        self.outputs = outputs
        if self.welded:
            self.physical = (self.physical & (OUT_NEG | OUT_POS)) | outputs
        else:
            self.physical = outputs

    def closed(self) -> bool:
        return (self.physical & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS)

    def short_current(self) -> float:
        """Pack current into a load short across the closed bus (negative)."""
        r = float(self.r0.sum() + self.r1.sum()) + self.short_ohm
        return -float((self.ocv_now + self.v1).sum()) / r

    def cv_current(self, target_v: float) -> float:
        """Pack current that holds the terminal voltage at target_v."""
        base = float((self.ocv_now + self.v1 - self.self_discharge_a * self.r0).sum())
        return (target_v - base) / float(self.r0.sum())

    def step(self, dt: float, t_s: float = 0.0):
        self.ambient_now = self.ambient_at(t_s)
        shorted = self.internal_short_ohm > 0
        self._shorted = _any(shorted)
        if self._shorted:
            self.self_discharge_a = np.where(shorted, self.ocv_now / np.where(shorted, self.internal_short_ohm, 1.0), 0.0)
        i = self.cell_currents()
        v_ocv = self.ocv_now
        # beyond 0..1 is abuse (over-charge / over-discharge), bounded for the tables
        stored = np.where(i > 0, i * self.coulombic_eff, i)  # charge not stored is lost to side reactions
        soc = self.soc + stored * dt / self.cap_as
        np.maximum(soc, -0.2, out=soc)
        self.soc = np.minimum(soc, 1.2, out=soc)
        surface = self.soc
        if self.lag_k[0] or self.lag_k[1]:
            c = i * 3600 / self.cap_as
            for j in (0, 1):
                a = math.exp(-dt / self.lag_tau[j])
                self.lag[j] = self.lag[j] * a + c * (1 - a)
            surface = self.soc + self.lag_k[0] * self.lag[0] + self.lag_k[1] * self.lag[1]
        self.ocv_now = self.ocv(surface)
        a = math.exp(-dt / self.tau)
        self.v1 = self.v1 * a + i * self.r1 * (1 - a)
        if _any(self.bleed):
            self.balance_energy_j += float(_sum(self.bleed * v_ocv ** 2 / (self.balance_ohm + 2 * self.sense_ohm))) * dt
        # bus (DC link) voltage
        vp = float(_sum(v_ocv + i * self.r0 + self.v1))
        if self.closed():
            self.bus_v = vp
        elif self.physical & OUT_NEG and self.physical & OUT_PRE and not self.precharge_open:
            self.bus_v += (vp - self.bus_v) * (1 - math.exp(-dt / (PRECHARGE_OHM * BUS_CAP_F)))
        else:
            self.bus_v *= math.exp(-dt / BUS_BLEED_TAU_S)
        self._thermal(i, dt)

    # -- thermal --------------------------------------------------------------
    def ambient_at(self, t_s: float) -> float:
        """Cabinet air: mean ambient plus a daily sine (peak at peak_hour)."""
        if not self.ambient_swing_c:
            return self.ambient_c
        h = (t_s / 3600.0) % 24.0
        return self.ambient_c + self.ambient_swing_c / 2 * math.cos(2 * math.pi * (h - self.ambient_peak_h) / 24.0)

    def _thermal(self, i, dt):
        heat = i * i * self.r0 + i * self.v1  # ohmic + polarisation losses, W
        if self._shorted:  # (the term is 0 without a short: skipped, same result)
            heat = heat + self.self_discharge_a ** 2 * self.internal_short_ohm  # an internal short heats its cell
        duty = self.pump_duty if self.pump_duty >= PUMP_MIN_DUTY else 0.0
        frac = duty * self.flow_factor
        flow = frac * PUMP_MAX_FLOW_M3_S
        self.flow_lpm = flow * 60000
        self.flow_pulses += self.flow_lpm * FLOW_HZ_PER_LPM * dt
        g_plate = G_PLATE_STILL_W_K + (G_PLATE_FLOW_W_K - G_PLATE_STILL_W_K) * frac ** 0.8
        # local coolant temperature rises along the path
        mdot_cp = flow * COOLANT_RHO * COOLANT_CP
        if mdot_cp > 1e-9:
            q_cells = g_plate * (self.temp - self.coolant_c)
            total = float(_sum(q_cells))
            rise = max(min(total / mdot_cp, 30.0), -30.0)
        else:
            rise = 0.0
        self.coolant_in_c = self.coolant_c - rise / 2
        self.coolant_out_c = self.coolant_c + rise / 2
        local = self.coolant_in_c + self.path * rise
        q_plate = g_plate * (self.temp - local)
        amb = self.ambient_now
        q_amb = G_AMBIENT_W_K * (self.temp - amb)
        q_nb = np.zeros(self.n)
        if self.n > 1:
            d = G_NEIGHBOUR_W_K * (self.temp[1:] - self.temp[:-1])  # heat from cell i+1 into cell i
            q_nb[:-1] += d
            q_nb[1:] -= d
        self.temp = self.temp + (heat - q_plate - q_amb + q_nb) * dt / self.heat_cap
        # while heating, a bypass valve takes the radiator out of the loop
        g_rad = G_RADIATOR_STILL_W_K + (0.0 if self.heater_on else (G_RADIATOR_W_K - G_RADIATOR_STILL_W_K) * frac)
        q_rad = g_rad * (self.coolant_c - amb)
        q_heat = HEATER_W if self.heater_on else 0.0
        self.heater_energy_j += q_heat * dt
        self.coolant_c += (float(_sum(q_plate)) - q_rad + q_heat) * dt / COOLANT_J_PER_K
        self.pump_energy_j += PUMP_MAX_W * self.pump_duty ** 3 * dt


def ntc_counts(temp_c, r25=10000.0, beta=3435.0, pullup=10000.0, full=4095):
    """ADC counts of an NTC to ground under a pull-up (as the firmware assumes)."""
    tk = np.asarray(temp_c, dtype=float) + 273.15
    r = r25 * np.exp(beta * (1 / tk - 1 / 298.15))
    return full * r / (r + pullup)
