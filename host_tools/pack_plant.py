"""The simulated pack as a plant of the loop (host_tools/loop.py): the ECM
pack (host_tools/plant.py), its sensors, the scenario's fault injections,
its actions (enable input, grid commands) and its charge/load profile."""
from __future__ import annotations

import math

import numpy as np

from host_tools import frames
from host_tools.injectors import Injectors
from host_tools.loop import Frame
from host_tools.plant import Pack
from host_tools.sensing import Sensing


class PackPlant:
    def __init__(self, sc, res, decim: int = 1, inverter=None, meter: tuple | None = None):
        self.sc = sc
        self.n = sc.pack.cells
        self.pack = Pack(sc)
        self.sensing = Sensing(sc, np.random.default_rng(sc.seed + 1))
        self.inj = Injectors()
        self.decim = decim
        self.dt = sc.tick_s
        self.faults_pending = sorted(sc.faults, key=lambda f: f.at_s)
        self.actions_pending = sorted(sc.actions, key=lambda a: a.at_s)
        self.enable = True
        self.profile = sc.profile
        self.step_i = 0
        self.step_t0 = 0.0
        self.step_ran = False
        self.step_low_s = 0.0
        self.command = (0, 0, 0)
        self.weather = np.random.default_rng(sc.seed + 2)
        self.day_factor: dict[int, float] = {}
        self.solar = self.load = 0.0
        self.reading = None
        self.res = res  # injections and actions go into the record as they happen
        self.inverter = inverter  # host_tools/inverter.py: the limits as decoded off the CAN bus (None: the sim frame's)
        # meter: (interval s, float64 array): the grid energy (Wh) exported in each interval (the fleet's books)
        self.meter = meter

    @property
    def done(self) -> bool:
        return self.step_i >= len(self.profile)

    def read(self, t: float, k: int) -> Frame:
        sc, pack, inj = self.sc, self.pack, self.inj
        res = self.res
        while self.faults_pending and self.faults_pending[0].at_s <= t + 1e-9:
            f = self.faults_pending.pop(0)
            inj.inject(f, t, pack)
            res.injections.append((t, f.kind, f.cell, f.sensor))
        while self.actions_pending and self.actions_pending[0].at_s <= t + 1e-9:
            a = self.actions_pending.pop(0)
            if a.kind in ("enable_on", "enable_off"):
                self.enable = a.kind == "enable_on"
            elif a.kind == "grid_start":
                self.command = (frames.CMD_GRID_START, int(round(a.power_w)), int(round(a.duration_s)))
            else:
                self.command = (frames.CMD_GRID_CANCEL, 0, 0)
            res.actions.append((t, a.kind))
        step = self.profile[self.step_i]
        solar = load = 0.0
        if step.kind == "household":
            h = (step.start_h + (t - self.step_t0) / 3600.0) % 24.0
            if step.solar_start_h < h < step.solar_end_h:
                day = int((t - self.step_t0 + step.start_h * 3600) // 86400)
                if day not in self.day_factor:
                    self.day_factor[day] = 1.0 - step.solar_variation * self.weather.random()
                solar = step.solar_peak_a * self.day_factor[day] * math.sin(
                    math.pi * (h - step.solar_start_h) / (step.solar_end_h - step.solar_start_h))
                load = step.load_day_a
            else:
                load = step.load_night_a
        self.solar, self.load = solar, load
        inj.physics(t, pack)
        r = self.reading = self.sensing.read(pack, inj)
        command, self.command = self.command, (0, 0, 0)
        return Frame(inj.flags(), r.cells_raw, r.temps_raw, r.current_raw, r.pack_raw, r.bus_raw, r.cool_raw[0],
                     r.cool_raw[1], r.flow_pulses,
                     inj.aux(pack.physical & 7) | (frames.IN_ENABLE if self.enable else 0)
                     | (frames.IN_CHARGER if step.kind == "charge" or solar > 0 else 0), command)

    def record(self, res, t: float, k: int, act) -> None:
        pack = self.pack
        v = self.reading.cells_v
        pack.heater_on = bool(act.heater)
        res.vmax.append(float(v.max()))
        res.vmin.append(float(v.min()))
        res.tmax.append(float(pack.temp.max()))
        res.tmin.append(float(pack.temp.min()))
        res.heater.append(pack.heater_on)
        res.tspread.append(float(pack.temp.max() - pack.temp.min()))
        res.cur.append(pack.current_a)
        res.soc_min.append(float(pack.soc.min()))
        res.soc_max.append(float(pack.soc.max()))
        res.flow_lpm.append(pack.flow_lpm)
        res.soc_true.append(pack.pack_soc())
        res.flow_pulses.append(int(pack.flow_pulses))
        if k % self.decim == 0:
            res.cell_t.append(t)
            res.cell_v.append(v.copy())
            res.cell_temp.append(pack.temp.copy())
            res.ambient.append(pack.ambient_at(t))
            res.coolant.append((pack.coolant_in_c, pack.coolant_out_c))

    def apply(self, t: float, act) -> float:
        pack, inj, res, n, dt = self.pack, self.inj, self.res, self.n, self.dt
        step = self.profile[self.step_i]
        v = self.reading.cells_v
        vp = float(v.sum())
        pack.command(act.outputs)
        bal = act.balance
        pack.bleed = np.array([(bal >> i) & 1 for i in range(n)], dtype=bool) if bal else np.zeros(n, dtype=bool)
        pack.pump_duty = act.pump_duty_pm / 1000
        ccl_a, dcl_a = act.ccl_ma / 1000, act.dcl_ma / 1000
        cv_cap = math.inf
        if self.inverter is not None:  # the limits as the inverter decoded them off the bus
            self.inverter.poll(t)
            ccl_a, dcl_a, cvl = self.inverter.limits(t)
            cv_cap = cvl if cvl is not None else math.inf
            res.can_limits.append((t, ccl_a, dcl_a, cvl))
        closed = pack.closed()
        # the inverter exports what the firmware asks, within the DCL
        grid_x = min(act.grid_ma / 1000, dcl_a) if closed and act.grid_ma > 0 else 0.0
        ended = None
        if step.kind == "rest":
            pack.current_a = -grid_x
            if t - self.step_t0 >= step.duration_s:
                ended = "duration"
        elif step.kind == "household":
            # PV serves the home first, the rest charges the pack within
            # CCL and CV; a deficit comes from the pack within DCL (the
            # grid covers what the DCL leaves).
            if not closed:
                pack.current_a = 0.0
            else:
                net = self.solar - self.load - grid_x
                if net >= 0:
                    pack.current_a = max(0.0, min(net, ccl_a, pack.cv_current(min(step.cv_v * n, cv_cap))))
                else:
                    pack.current_a = -min(-net, dcl_a)
            if t - self.step_t0 >= step.duration_s:
                ended = "duration"
        elif step.kind == "charge":
            if not closed:
                i_set = 0.0
            elif inj.charger_no_stop:
                i_set = step.current_a  # the charger ignores limits and CV
            else:
                i_set = max(0.0, min(step.current_a, ccl_a, pack.cv_current(min(step.cv_v * n, cv_cap))))
            pack.current_a = i_set
            if closed and i_set > step.termination_a:
                self.step_ran = True
            if self.step_ran and not inj.charger_no_stop:
                self.step_low_s = self.step_low_s + dt if i_set <= step.termination_a else 0.0
                if self.step_low_s >= 30.0:
                    ended = "firmware" if ccl_a <= 0 else "charger"
            if self.step_ran and not closed:
                ended = "firmware"
        else:  # discharge
            if not closed:
                i_set = 0.0
            elif inj.load_ignores_limits:
                i_set = step.current_a
            else:
                i_set = min(step.current_a, dcl_a)
            pack.current_a = -min(i_set + grid_x, max(dcl_a, i_set))
            if closed and i_set > 0:
                self.step_ran = True
            if self.step_ran:
                self.step_low_s = self.step_low_s + dt if i_set <= 0.01 * step.current_a else 0.0
                if self.step_low_s >= 5.0 or not closed:
                    ended = "firmware"
        if ended is None and step.kind not in ("rest", "household") and t - self.step_t0 >= step.timeout_s:
            ended = "timeout"
        delivered = min(grid_x, max(0.0, -pack.current_a))
        res.grid_a.append(delivered)
        if ended:
            res.step_ends.append((self.step_i, step.kind, t, ended))
            if step.kind == "charge":
                res.charge_ends.append((t, float(v.max() - v.min()), ended))
            self.step_i += 1
            self.step_t0 = t + dt
            self.step_ran = False
            self.step_low_s = 0.0
            if self.step_i < len(self.profile) and self.profile[self.step_i].kind != "charge":
                inj.charger_no_stop = False  # the faulty charger is not connected in other steps
        wh = delivered * vp * dt / 3600
        if wh and self.meter is not None:
            interval_s, bins = self.meter
            bins[min(int(t // interval_s), len(bins) - 1)] += wh
        return wh

    def step(self, dt: float, t: float) -> None:
        pack = self.pack
        if pack.short_ohm and pack.closed():
            pack.current_a = pack.short_current()  # the short takes over the bus
        pack.step(dt, t)

    def finish(self, res, t: float) -> None:
        pack = self.pack
        res.pump_energy_wh = pack.pump_energy_j / 3600
        res.balance_energy_wh = pack.balance_energy_j / 3600
        res.heater_energy_wh = pack.heater_energy_j / 3600
        res.true_capacity_ah = pack.pack_capacity_ah()
