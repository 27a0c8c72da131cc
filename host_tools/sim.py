"""Software in the loop: the unmodified firmware under the MicroPython unix
port, in lock-step with the plant over a local TCP socket.

Each tick the host sends one sensor frame (what the front end would measure
now), the firmware runs app.tick() and answers with one actuator frame
(contactors, balancing, pump, current limits, fault bits); the host applies
it for the next tick. Time is the host's, so runs are reproducible and run
as fast as both sides can compute.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host_tools import frames
from host_tools.firmware import BOARD_CONFIGS, FIRMWARE
from host_tools.link import FirmwareError, FirmwareLink
from host_tools.injectors import Injectors
from host_tools.plant import Pack
from host_tools.sensing import Sensing
from host_tools.scenario import Scenario

SEVERITY = {1: "warning", 2: "fault", 3: "critical"}
CONTACTOR_STATES = ("open", "precharge", "closing", "closed", "locked")


def firmware_config(sc: Scenario, board: str = "sim") -> dict:
    """The firmware's configuration: the board's JSON plus the scenario's pack."""
    board_cfg = json.loads((BOARD_CONFIGS / f"{board}.json").read_text())
    # Only what the firmware's configuration knows; pins, buses and the MCU
    # stay in the board config (board.json on a board).
    cfg = {k: board_cfg[k] for k in ("board", "hal") if k in board_cfg}
    cfg.update({
        "name": sc.name,
        "chemistry": sc.pack.chemistry,
        "cells": sc.pack.cells,
        "temps": sc.pack.temps,
        "capacity_mah": firmware_capacity_mah(sc),
        "tick_ms": int(round(sc.tick_s * 1000)),
    })
    cfg.update(sc.firmware)
    return cfg


def firmware_capacity_mah(sc: Scenario) -> int:
    """The capacity the firmware believes: the pack's, off by the
    scenario's estimate error."""
    return int(round(sc.pack.capacity_ah * 1000 * (1 + sc.estimate.capacity_error)))


@dataclass
class Result:
    scenario: Scenario
    hello: dict
    sim_s: float = 0.0
    wall_s: float = 0.0
    ticks: int = 0
    # per tick series (lists, converted to numpy at the end)
    t: list = field(default_factory=list)
    vmax: list = field(default_factory=list)
    vmin: list = field(default_factory=list)
    tmax: list = field(default_factory=list)
    tmin: list = field(default_factory=list)
    cur: list = field(default_factory=list)
    soc_min: list = field(default_factory=list)
    soc_max: list = field(default_factory=list)
    duty: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    ccl: list = field(default_factory=list)
    dcl: list = field(default_factory=list)
    balancing: list = field(default_factory=list)
    # decimated per-cell series for the plot
    cell_t: list = field(default_factory=list)
    cell_v: list = field(default_factory=list)
    cell_temp: list = field(default_factory=list)
    coolant: list = field(default_factory=list)
    ambient: list = field(default_factory=list)
    fault_events: list = field(default_factory=list)  # (t, name, "raised"/"cleared")
    contactor_events: list = field(default_factory=list)  # (t, state name)
    step_ends: list = field(default_factory=list)  # (step index, kind, t, by)
    injections: list = field(default_factory=list)  # (t, kind, cell, sensor)
    actions: list = field(default_factory=list)  # (t, kind)
    events: list = field(default_factory=list)  # (firmware ms, code, arg, value) from the event record
    flow_lpm: list = field(default_factory=list)
    heater: list = field(default_factory=list)
    tspread: list = field(default_factory=list)  # hottest - coldest cell (true), K
    vmax_meas: list = field(default_factory=list)  # what the firmware received (nominal scale), V
    vmin_meas: list = field(default_factory=list)
    flow_pulses: list = field(default_factory=list)  # the flow meter counter as sent
    soc_fw: list = field(default_factory=list)  # firmware SOC, fraction (nan while unknown)
    soc_true: list = field(default_factory=list)  # plant's true pack SOC, fraction
    grid_a: list = field(default_factory=list)  # export current the pack delivered to the grid, A
    grid_energy_wh: float = 0.0  # pack-side energy exported to the grid (plant)
    charge_ends: list = field(default_factory=list)  # (t, true cell spread in V, by) at the end of each charge step
    capacity_mah_fw: int = 0  # the firmware's last capacity estimate
    true_capacity_ah: float = 0.0  # the plant's usable pack capacity at the end
    grid_ends: list = field(default_factory=list)  # (t start, t end, reason, firmware mWh, plant Wh)
    pump_energy_wh: float = 0.0
    balance_energy_wh: float = 0.0
    heater_energy_wh: float = 0.0
    firmware_log: str = ""
    internal_error: bool = False
    firmware_config: dict = field(default_factory=dict)
    always_on: "Result | None" = None  # the same scenario with the pump at 100 % (pump_saving)

    def arrays(self):
        for name in ("t", "vmax", "vmin", "tmax", "tmin", "cur", "soc_min", "soc_max", "duty", "outputs", "ccl", "dcl", "balancing", "flow_lpm", "vmax_meas", "vmin_meas", "flow_pulses", "heater", "tspread", "soc_fw", "soc_true", "grid_a"):
            setattr(self, name, np.asarray(getattr(self, name)))

    @property
    def rtf(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s > 0 else float("inf")

    def faults_raised(self):
        return [(t, n) for t, n, what in self.fault_events if what == "raised"]

    def severity(self) -> dict[str, int]:
        """Each fault row's severity from the firmware's hello (1 warning,
        2 fault, 3 critical)."""
        return dict(zip(self.hello["faults"], self.hello["severity"]))


class Simulation:
    def __init__(self, sc: Scenario, kernels: str = "viper", plot_every_s: float | None = None,
                 firmware_dir: Path | None = None, mp_args=(), stop_on_fault: str | None = None,
                 linger_s: float = 1.0, cpu: int | None = None, state_dir: Path | None = None,
                 afe: str | None = None):
        """stop_on_fault: end the run `linger_s` after this fault is first
        raised (campaigns). cpu: the core for the lock-step pair (default:
        chosen by pid)."""
        self.stop_on_fault = stop_on_fault
        self.linger_s = linger_s
        self.cpu = cpu
        self.state_dir = state_dir  # the firmware's persistent files (survive between runs)
        self.afe = afe  # None: sim HAL; "bq76952", "ltc6813", "adc": through that chip model
        self.sc = sc
        self.kernels = kernels
        self.plot_every_s = plot_every_s
        self.firmware_dir = Path(firmware_dir or FIRMWARE)
        self.mp_args = tuple(mp_args)
        self.recorder = None  # a list: every tick's (sensor, actuator) frames (host_tools/mp32/replay.py)

    def run(self) -> Result:
        # Lock-step ping-pong is fastest with both processes on one core: a
        # wake-up on the same core skips the cross-core interrupt (measured
        # here: ~710x instead of ~410x real time for 16 cells). Each run
        # picks a core by its pid, so parallel runs spread over the cores.
        saved = None
        if hasattr(os, "sched_setaffinity"):
            saved = os.sched_getaffinity(0)
            cpus = sorted(saved)
            os.sched_setaffinity(0, {cpus[(os.getpid() if self.cpu is None else self.cpu) % len(cpus)]})
        try:
            return self._run()
        finally:
            if saved is not None:
                os.sched_setaffinity(0, saved)

    def _run(self) -> Result:
        sc = self.sc
        self.config = firmware_config(sc)
        reset = "wdt" if any(f.kind == "watchdog_reset" for f in sc.faults) else "power"
        tmp = None
        state_dir = self.state_dir
        if sc.firmware_soc is not None:
            if state_dir is None:
                import tempfile
                tmp = tempfile.TemporaryDirectory(prefix="bmsstate-")
                state_dir = Path(tmp.name)
            # a capacity error is a learned capacity in the record, too
            write_state_record(Path(state_dir), int(round(sc.firmware_soc * 10000)),
                               firmware_capacity_mah(sc) if sc.estimate.capacity_error else 0)
        try:
            with FirmwareLink(self.config, self.kernels, self.firmware_dir, self.mp_args, reset, state_dir,
                              self.afe) as link:
                link.recorder = self.recorder
                result = self._loop(link)
        finally:
            if tmp is not None:
                tmp.cleanup()
        result.firmware_log = link.log
        return result

    def _loop(self, link: FirmwareLink) -> Result:
        sc = self.sc
        hello = link.hello
        res = Result(sc, hello)
        res.firmware_config = self.config
        n, m = sc.pack.cells, sc.pack.temps
        nf = len(hello["faults"])
        pack = Pack(sc)
        sensing = Sensing(sc, np.random.default_rng(sc.seed + 1))
        dt = sc.tick_s
        tick_ms = int(round(dt * 1000))
        decim = max(1, int(round((self.plot_every_s or max(1.0, sc.duration_limit_s / 4000)) / dt)))
        faults_pending = sorted(sc.faults, key=lambda f: f.at_s)
        actions_pending = sorted(sc.actions, key=lambda a: a.at_s)
        inj = Injectors()
        gain_q16 = np.array(hello["settings"]["cell_gain_q16"], dtype=np.int64)
        offset_mv = np.array(hello["settings"]["cell_offset_mv"], dtype=np.int64)
        enable = True
        prev_faults = [0] * nf
        prev_state = -1
        step_i = 0
        step_t0 = 0.0
        step_ran = False
        step_low_s = 0.0
        profile = sc.profile
        clock0 = sc.clock_start_ms
        k = 0
        wall0 = time.perf_counter()
        t = 0.0
        ccl_a = dcl_a = 0.0
        stop_bit = hello["faults"].index(self.stop_on_fault) if self.stop_on_fault else -1
        stop_at = None
        command = (0, 0, 0)
        grid_x = 0.0  # export current the inverter draws now, A
        weather = np.random.default_rng(sc.seed + 2)
        day_factor: dict[int, float] = {}
        grid_open = None  # (t start) of the running grid event (firmware events)
        grid_wh = 0.0
        while step_i < len(profile):
            if stop_at is not None and k * dt >= stop_at:
                break
            t = k * dt
            while faults_pending and faults_pending[0].at_s <= t + 1e-9:
                f = faults_pending.pop(0)
                inj.inject(f, t, pack)
                res.injections.append((t, f.kind, f.cell, f.sensor))
            while actions_pending and actions_pending[0].at_s <= t + 1e-9:
                a = actions_pending.pop(0)
                if a.kind in ("enable_on", "enable_off"):
                    enable = a.kind == "enable_on"
                elif a.kind == "grid_start":
                    command = (frames.CMD_GRID_START, int(round(a.power_w)), int(round(a.duration_s)))
                else:
                    command = (frames.CMD_GRID_CANCEL, 0, 0)
                res.actions.append((t, a.kind))
            step = profile[step_i]
            solar = load = 0.0
            if step.kind == "household":
                h = (step.start_h + (t - step_t0) / 3600.0) % 24.0
                if step.solar_start_h < h < step.solar_end_h:
                    day = int((t - step_t0 + step.start_h * 3600) // 86400)
                    if day not in day_factor:
                        day_factor[day] = 1.0 - step.solar_variation * weather.random()
                    solar = step.solar_peak_a * day_factor[day] * math.sin(
                        math.pi * (h - step.solar_start_h) / (step.solar_end_h - step.solar_start_h))
                    load = step.load_day_a
                else:
                    load = step.load_night_a
            inj.physics(t, pack)
            # -- sensors at time t ------------------------------------------
            r = sensing.read(pack, inj)
            v = r.cells_v
            vp = float(v.sum())
            mv_fw = (np.asarray(r.cells_raw) * gain_q16 >> 16) + offset_mv  # as the firmware scales them
            res.vmax_meas.append(int(mv_fw.max()) / 1000)
            res.vmin_meas.append(int(mv_fw.min()) / 1000)
            act = link.exchange(inj.flags(), k, clock0 + k * tick_ms, r.cells_raw, r.temps_raw,
                                r.current_raw, r.pack_raw, r.bus_raw, r.cool_raw[0], r.cool_raw[1], r.flow_pulses,
                                inj.aux(pack.physical & 7) | (frames.IN_ENABLE if enable else 0)
                                | (frames.IN_CHARGER if step.kind == "charge" or solar > 0 else 0), command)
            command = (0, 0, 0)
            res.events.extend(act.events)
            for fw_ms, code, arg, value in act.events:
                if code == frames.EV_GRID_START:
                    grid_open = t
                    grid_wh = 0.0
                elif code == frames.EV_GRID_END:
                    res.grid_ends.append((grid_open if grid_open is not None else t, t, frames.GRID_REASONS.get(arg, str(arg)), value, grid_wh))
                    grid_open = None
                elif code == frames.EV_GRID_REJECT:
                    res.grid_ends.append((t, t, "rejected:" + frames.GRID_REASONS.get(arg, str(arg)), 0, 0.0))
            outputs, cstate, duty, bal_count = act.outputs, act.contactor_state, act.pump_duty_pm, act.balance_count
            pack.heater_on = bool(act.heater)
            ccl, dcl, flags, fb = act.ccl_ma, act.dcl_ma, act.flags, act.faults
            if flags & 1:
                res.internal_error = True
            # -- record ------------------------------------------------------
            res.t.append(t)
            res.vmax.append(float(v.max()))
            res.vmin.append(float(v.min()))
            res.tmax.append(float(pack.temp.max()))
            res.tmin.append(float(pack.temp.min()))
            res.heater.append(pack.heater_on)
            res.tspread.append(float(pack.temp.max() - pack.temp.min()))
            res.cur.append(pack.current_a)
            res.soc_min.append(float(pack.soc.min()))
            res.soc_max.append(float(pack.soc.max()))
            res.duty.append(duty / 1000)
            res.outputs.append(outputs)
            res.ccl.append(ccl / 1000)
            res.dcl.append(dcl / 1000)
            res.balancing.append(bal_count)
            res.flow_lpm.append(pack.flow_lpm)
            res.soc_fw.append(act.soc_cpct / 10000 if act.soc_cpct >= 0 else float("nan"))
            res.soc_true.append(pack.pack_soc())
            res.capacity_mah_fw = act.capacity_mah
            res.flow_pulses.append(int(pack.flow_pulses))
            if k % decim == 0:
                res.cell_t.append(t)
                res.cell_v.append(v.copy())
                res.cell_temp.append(pack.temp.copy())
                res.ambient.append(pack.ambient_at(t))
                res.coolant.append((pack.coolant_in_c, pack.coolant_out_c))
            if fb or any(prev_faults):
                for i in range(nf):
                    bit = (fb >> i) & 1
                    if bit != prev_faults[i]:
                        res.fault_events.append((t, hello["faults"][i], "raised" if bit else "cleared"))
                        prev_faults[i] = bit
                        if i == stop_bit and bit and stop_at is None:
                            stop_at = t + self.linger_s
            if cstate != prev_state:
                res.contactor_events.append((t, CONTACTOR_STATES[cstate] if cstate < len(CONTACTOR_STATES) else str(cstate)))
                prev_state = cstate
            # -- actuators for [t, t + dt) -------------------------------------
            pack.command(outputs)
            bal = act.balance
            pack.bleed = np.array([(bal >> i) & 1 for i in range(n)], dtype=bool) if bal else np.zeros(n, dtype=bool)
            pack.pump_duty = duty / 1000
            ccl_a, dcl_a = ccl / 1000, dcl / 1000
            closed = pack.closed()
            # the inverter exports what the firmware asks, within the DCL
            grid_x = min(act.grid_ma / 1000, dcl_a) if closed and act.grid_ma > 0 else 0.0
            ended = None
            if step.kind == "rest":
                pack.current_a = -grid_x
                if t - step_t0 >= step.duration_s:
                    ended = "duration"
            elif step.kind == "household":
                # PV serves the home first, the rest charges the pack within
                # CCL and CV; a deficit comes from the pack within DCL (the
                # grid covers what the DCL leaves).
                if not closed:
                    pack.current_a = 0.0
                else:
                    net = solar - load - grid_x
                    if net >= 0:
                        pack.current_a = max(0.0, min(net, ccl_a, pack.cv_current(step.cv_v * n)))
                    else:
                        pack.current_a = -min(-net, dcl_a)
                if t - step_t0 >= step.duration_s:
                    ended = "duration"
            elif step.kind == "charge":
                if not closed:
                    i_set = 0.0
                elif inj.charger_no_stop:
                    i_set = step.current_a  # the charger ignores limits and CV
                else:
                    i_set = max(0.0, min(step.current_a, ccl_a, pack.cv_current(step.cv_v * n)))
                pack.current_a = i_set
                if closed and i_set > step.termination_a:
                    step_ran = True
                if step_ran and not inj.charger_no_stop:
                    step_low_s = step_low_s + dt if i_set <= step.termination_a else 0.0
                    if step_low_s >= 30.0:
                        ended = "firmware" if ccl_a <= 0 else "charger"
                if step_ran and not closed:
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
                    step_ran = True
                if step_ran:
                    step_low_s = step_low_s + dt if i_set <= 0.01 * step.current_a else 0.0
                    if step_low_s >= 5.0 or not closed:
                        ended = "firmware"
            if ended is None and step.kind not in ("rest", "household") and t - step_t0 >= step.timeout_s:
                ended = "timeout"
            delivered = min(grid_x, max(0.0, -pack.current_a))
            res.grid_a.append(delivered)
            grid_wh += delivered * vp * dt / 3600
            res.grid_energy_wh += delivered * vp * dt / 3600
            if ended:
                res.step_ends.append((step_i, step.kind, t, ended))
                if step.kind == "charge":
                    res.charge_ends.append((t, float(v.max() - v.min()), ended))
                step_i += 1
                step_t0 = t + dt
                step_ran = False
                step_low_s = 0.0
                if step_i < len(profile) and profile[step_i].kind != "charge":
                    inj.charger_no_stop = False  # the faulty charger is not connected in other steps
            if pack.short_ohm and pack.closed():
                pack.current_a = pack.short_current()  # the short takes over the bus
            pack.step(dt, t)
            k += 1
        res.wall_s = time.perf_counter() - wall0
        res.ticks = k
        res.sim_s = k * dt
        res.pump_energy_wh = pack.pump_energy_j / 3600
        res.balance_energy_wh = pack.balance_energy_j / 3600
        res.heater_energy_wh = pack.heater_energy_j / 3600
        res.true_capacity_ah = pack.pack_capacity_ah()
        if grid_open is not None:
            res.grid_ends.append((grid_open, t, "running", 0, grid_wh))
        res.arrays()
        return res


def write_state_record(state_dir: Path, soc_cpct: int, capacity_mah: int = 0) -> None:
    """A state record (firmware/bms/persist/state_record.py, version 2) that
    makes the firmware boot believing the pack is at soc_cpct (and, when
    given, has capacity_mah)."""
    import struct
    import zlib
    state_dir.mkdir(parents=True, exist_ok=True)
    body = struct.pack("<IIiiiii8sI", 0x32535452, 1, soc_cpct, capacity_mah, 0, 0, 0, bytes(8), 0)
    (state_dir / "state.b").write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def run(sc: Scenario, kernels: str = "viper", afe: str | None = None) -> Result:
    """Runs a scenario; a pump_saving expectation adds the always-on run."""
    res = Simulation(sc, kernels, afe=afe).run()
    if any(e.kind == "pump_saving" for e in sc.expects):
        import copy
        ao = copy.deepcopy(sc)
        ao.firmware["pump_force_pm"] = 1000
        res.always_on = Simulation(ao, kernels, afe=afe).run()
    return res
