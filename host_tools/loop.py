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
             decisions: bool = False) -> Result:
    """Runs the plant against the firmware behind `link` until the plant is
    done (or `linger_s` after `stop_on_fault` was first raised)."""
    hello = link.hello
    nf = len(hello["faults"])
    dt = res.tick_s
    tick_ms = int(round(dt * 1000))
    clock0 = res.clock0_ms
    gain_q16 = np.array(hello["settings"]["cell_gain_q16"], dtype=np.int64)
    offset_mv = np.array(hello["settings"]["cell_offset_mv"], dtype=np.int64)
    prev_faults = [0] * nf
    prev_state = -1
    stop_bit = hello["faults"].index(stop_on_fault) if stop_on_fault else -1
    stop_at = None
    grid_open = None  # (t start) of the running grid event (firmware events)
    grid_wh = 0.0
    if decisions:
        res.decisions = []
        res.sent = []
    k = 0
    t = 0.0
    wall0 = time.perf_counter()
    while not plant.done:
        if stop_at is not None and k * dt >= stop_at:
            break
        t = k * dt
        f = plant.read(t, k)
        mv_fw = (np.asarray(f.cells_raw) * gain_q16 >> 16) + offset_mv  # as the firmware scales them
        res.vmax_meas.append(int(mv_fw.max()) / 1000)
        res.vmin_meas.append(int(mv_fw.min()) / 1000)
        act = link.exchange(f.flags, k, clock0 + k * tick_ms, f.cells_raw, f.temps_raw, f.current_raw, f.pack_raw,
                            f.bus_raw, f.cool_in_raw, f.cool_out_raw, f.flow_pulses, f.inputs, f.command)
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
        if decisions:
            res.sent.append(f)
            res.decisions.append((t, act.outputs, act.contactor_state, act.ccl_ma, act.dcl_ma, act.soc_cpct,
                                  act.balance, act.pump_duty_pm, act.heater, act.faults))
        plant.record(res, t, k, act)
        fb = act.faults
        if fb or any(prev_faults):
            for i in range(nf):
                bit = (fb >> i) & 1
                if bit != prev_faults[i]:
                    res.fault_events.append((t, hello["faults"][i], "raised" if bit else "cleared"))
                    prev_faults[i] = bit
                    if i == stop_bit and bit and stop_at is None:
                        stop_at = t + linger_s
        cstate = act.contactor_state
        if cstate != prev_state:
            res.contactor_events.append((t, CONTACTOR_STATES[cstate] if cstate < len(CONTACTOR_STATES) else str(cstate)))
            prev_state = cstate
        # -- actuators for [t, t + dt) -----------------------------------------
        wh = plant.apply(t, act)
        grid_wh += wh
        res.grid_energy_wh += wh
        plant.step(dt, t)
        k += 1
    res.wall_s = time.perf_counter() - wall0
    res.ticks = k
    res.sim_s = k * dt
    plant.finish(res, t)
    if grid_open is not None:
        res.grid_ends.append((grid_open, t, "running", 0, grid_wh))
    res.arrays()
    return res
