"""The one software-in-the-loop loop: a plant, the firmware, a record.

A plant is anything with
  read(t, k) -> Frame     the sensor frame for tick k at host time t
  record(res, t, k, act)  its side of the record for this tick (truth, or the recorded values)
  apply(t, act) -> float  take the firmware's actuator frame; returns the energy (Wh) exported
                          to the grid in [t, t + dt)
  step(dt, t)             advance to t + dt
  done                    True when the run is over
  finish(res, t)          end-of-run figures
The ECM pack (host_tools/pack_plant.py) and a recorded trace
(host_tools/trace_plant.py) are the two. The loop does the firmware's side:
exchange the frames, record its decisions, and keep the fault, contactor,
event and grid-event books."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from host_tools import frames
from host_tools.record import CONTACTOR_STATES, Result


@dataclass
class Frame:
    flags: int
    cells_raw: list
    temps_raw: list
    current_raw: int
    pack_raw: int
    bus_raw: int
    cool_in_raw: int
    cool_out_raw: int
    flow_pulses: int
    inputs: int
    command: tuple = (0, 0, 0)
    gap: bool = False  # no reading for this tick (the flags say so to the firmware)


def run_loop(link, plant, res: Result, stop_on_fault: str | None = None, linger_s: float = 1.0,
             decisions: bool = False, fused: bool | None = None) -> Result:
    """Runs the plant against the firmware behind `link` until the plant is
    done (or `linger_s` after `stop_on_fault` was first raised). fused: run
    the routine ticks in the compiled loop (host_tools/fused.py; None: where
    it is built and can run this plant), else every tick here."""
    loop = LockStep(link, plant, res, stop_on_fault, linger_s, decisions)
    runner = None
    if fused is not False:
        from host_tools import fused as fused_mod
        runner = fused_mod.FusedLoop.for_loop(loop, required=bool(fused))
    wall0 = time.perf_counter()
    while not plant.done:
        if loop.stop_at is not None and loop.k * loop.dt >= loop.stop_at:
            break
        if runner is not None and runner.usable():
            if runner.run():  # stopped at stop_at
                break
        else:
            loop.tick()
    res.wall_s = time.perf_counter() - wall0
    res.fused = runner.stats if runner is not None else None
    return loop.finish()


class LockStep:
    """The loop's books between ticks, and one tick in Python: the plant's
    sensor frame, the exchange, then after() (the record, the fault,
    contactor and grid-event books, the actuators, the plant's step)."""

    def __init__(self, link, plant, res: Result, stop_on_fault: str | None, linger_s: float, decisions: bool):
        self.link, self.plant, self.res = link, plant, res
        hello = link.hello
        self.fault_names = hello["faults"]
        self.nf = len(self.fault_names)
        self.dt = res.tick_s
        self.tick_ms = int(round(self.dt * 1000))
        self.clock0 = res.clock0_ms
        self.gain_q16 = np.array(hello["settings"]["cell_gain_q16"], dtype=np.int64)
        self.offset_mv = np.array(hello["settings"]["cell_offset_mv"], dtype=np.int64)
        self.prev_faults = [0] * self.nf
        self.prev_state = -1
        self.stop_bit = self.fault_names.index(stop_on_fault) if stop_on_fault else -1
        self.linger_s = linger_s
        self.stop_at = None
        self.grid_open = None  # (t start) of the running grid event (firmware events)
        self.grid_wh = 0.0
        self.decisions = decisions
        if decisions:
            res.decisions = []
            res.sent = []
        self.k = 0
        self.t = 0.0

    def tick(self) -> None:
        k = self.k
        t = self.t = k * self.dt
        f = self.plant.read(t, k)
        mv_fw = (np.asarray(f.cells_raw) * self.gain_q16 >> 16) + self.offset_mv  # as the firmware scales them
        act = self.link.exchange(f.flags, k, self.clock0 + k * self.tick_ms, f.cells_raw, f.temps_raw, f.current_raw,
                                 f.pack_raw, f.bus_raw, f.cool_in_raw, f.cool_out_raw, f.flow_pulses, f.inputs, f.command)
        self.after(t, k, f, int(mv_fw.max()) / 1000, int(mv_fw.min()) / 1000, act)

    def after(self, t: float, k: int, f: Frame, vmax_meas: float, vmin_meas: float, act) -> None:
        res, plant = self.res, self.plant
        res.vmax_meas.append(vmax_meas)
        res.vmin_meas.append(vmin_meas)
        res.events.extend(act.events)
        for fw_ms, code, arg, value in act.events:
            if code == frames.EV_GRID_START:
                self.grid_open = t
                self.grid_wh = 0.0
            elif code == frames.EV_GRID_END:
                res.grid_ends.append((self.grid_open if self.grid_open is not None else t, t,
                                      frames.GRID_REASONS.get(arg, str(arg)), value, self.grid_wh))
                self.grid_open = None
            elif code == frames.EV_GRID_REJECT:
                res.grid_ends.append((t, t, "rejected:" + frames.GRID_REASONS.get(arg, str(arg)), 0, 0.0))
        if act.flags & 1:
            res.internal_error = True
        # -- record: the firmware's side, then the plant's -------------------
        res.t.append(t)
        res.gap.append(f.gap)
        res.duty.append(act.pump_duty_pm / 1000)
        res.outputs.append(act.outputs)
        res.ccl.append(act.ccl_ma / 1000)
        res.dcl.append(act.dcl_ma / 1000)
        res.balancing.append(act.balance_count)
        res.soc_fw.append(act.soc_cpct / 10000 if act.soc_cpct >= 0 else float("nan"))
        res.capacity_mah_fw = act.capacity_mah
        if self.decisions:
            res.sent.append(f)
            res.decisions.append((t, act.outputs, act.contactor_state, act.ccl_ma, act.dcl_ma, act.soc_cpct,
                                  act.balance, act.pump_duty_pm, act.heater, act.faults))
        plant.record(res, t, k, act)
        fb = act.faults
        prev_faults = self.prev_faults
        if fb or any(prev_faults):
            for i in range(self.nf):
                bit = (fb >> i) & 1
                if bit != prev_faults[i]:
                    res.fault_events.append((t, self.fault_names[i], "raised" if bit else "cleared"))
                    prev_faults[i] = bit
                    if i == self.stop_bit and bit and self.stop_at is None:
                        self.stop_at = t + self.linger_s
        cstate = act.contactor_state
        if cstate != self.prev_state:
            res.contactor_events.append((t, CONTACTOR_STATES[cstate] if cstate < len(CONTACTOR_STATES) else str(cstate)))
            self.prev_state = cstate
        # -- actuators for [t, t + dt) -----------------------------------------
        wh = plant.apply(t, act)
        self.grid_wh += wh
        res.grid_energy_wh += wh
        plant.step(self.dt, t)
        self.k = k + 1

    def finish(self) -> Result:
        res = self.res
        k, dt = self.k, self.dt
        res.ticks = k
        res.sim_s = k * dt
        self.plant.finish(res, self.t)
        if self.grid_open is not None:
            res.grid_ends.append((self.grid_open, self.t, "running", 0, self.grid_wh))
        res.arrays()
        return res
