"""A recorded trace as a plant of the loop (host_tools/loop.py).

The record is what happened: the firmware's outputs are recorded but
change nothing in it. What a trace cannot know is modelled as the ideal
part, and said here:
- contactor feedback: the auxiliary contacts report what the firmware
  commanded the tick before (contactors that do what they are told);
- the DC link: the record's bus voltage when it has one, else the pack
  voltage while the negative contactor and the precharge or positive
  contactor are commanded closed, else 0 V (an instant precharge);
- the charger input: the record's charger column, else "present" while
  the recorded current charges at more than 0.01 C;
- the enable input is on;
- coolant temperatures: a record without them reads as open coolant
  sensors (full scale), so the firmware reports the sensor missing;
- the flow meter counter: the record's counter, or its flow (L/min at the
  plant's 7.5 Hz per L/min, or pulses per second) integrated per tick;
  without flow data it stands still (a pump the firmware runs shows no flow);
- a tick without a reading (trace.resample) goes to the firmware as a
  frame flagged "front end silent" (the sim HAL's FLAG_NO_DATA)."""
from __future__ import annotations

import numpy as np

from host_tools import frames
from host_tools.injectors import FLAG_NO_DATA
from host_tools.loop import Frame
from host_tools.plant import FLOW_HZ_PER_LPM, OUT_NEG, OUT_POS, OUT_PRE
from host_tools.sensing import Sensing

NO_SENSOR = (4095, 4095)  # an open NTC reads full scale: a record without coolant temperatures has no coolant sensors


class TracePlant:
    def __init__(self, tr, ticks, res, cells: int, temps: int, capacity_ah: float, decim: int = 1):
        self.tr, self.ticks, self.res = tr, ticks, res
        self.n, self.m = cells, temps
        self.sensing = Sensing.exact(cells, temps)
        self.charge_a = 0.01 * capacity_ah
        self.decim = decim
        self.k = 0
        self.outputs = 0
        self.pulses = 0.0
        self.nan_cells = np.full(cells, np.nan)
        self.nan_temps = np.full(temps, np.nan)

    @property
    def done(self) -> bool:
        return self.k >= len(self.ticks.t_s)

    def _bus_v(self, j: int, pack_v: float) -> float:
        if self.tr.bus_v is not None and not np.isnan(self.tr.bus_v[j]):
            return float(self.tr.bus_v[j])
        o = self.outputs
        return pack_v if o & OUT_NEG and o & (OUT_PRE | OUT_POS) else 0.0

    def read(self, t: float, k: int) -> Frame:
        tr = self.tr
        self.k = k
        j = int(self.ticks.sample[k])
        gap = bool(self.ticks.gap[k])
        if tr.charger is not None:
            charging = not np.isnan(tr.charger[j]) and tr.charger[j] > 0.5
        else:
            charging = not gap and tr.current_a[j] > self.charge_a
        inputs = (self.outputs & 7) | frames.IN_ENABLE | (frames.IN_CHARGER if charging else 0)
        if tr.flow is not None and tr.flow_unit == "pulses" and not np.isnan(tr.flow[j]):
            self.pulses = float(tr.flow[j])
        if gap:
            return Frame(FLAG_NO_DATA, [0] * self.n, [0] * self.m, 0, 0, 0, 0, 0, int(self.pulses), inputs, gap=True)
        v = tr.cells_v[j]
        pack_v = float(tr.pack_v[j]) if tr.pack_v is not None and not np.isnan(tr.pack_v[j]) else float(v.sum())
        cool = tr.coolant_c[j] if tr.coolant_c is not None else (25.0, 25.0)
        r = self.sensing.counts(v, tr.temps_c[j], cool, float(tr.current_a[j]), pack_v, self._bus_v(j, pack_v),
                                self.pulses)
        cool_raw = r.cool_raw if tr.coolant_c is not None else NO_SENSOR
        return Frame(0, r.cells_raw, r.temps_raw, r.current_raw, r.pack_raw, r.bus_raw, cool_raw[0], cool_raw[1],
                     r.flow_pulses, inputs)

    def record(self, res, t: float, k: int, act) -> None:
        tr = self.tr
        j = int(self.ticks.sample[k])
        gap = bool(self.ticks.gap[k])
        v = self.nan_cells if gap else tr.cells_v[j]
        temps = self.nan_temps if gap else tr.temps_c[j]
        res.vmax.append(float(v.max()))
        res.vmin.append(float(v.min()))
        res.tmax.append(float(temps.max()))
        res.tmin.append(float(temps.min()))
        res.tspread.append(float(temps.max() - temps.min()))
        res.cur.append(float("nan") if gap else float(tr.current_a[j]))
        res.heater.append(bool(act.heater))
        res.soc_min.append(float("nan"))
        res.soc_max.append(float("nan"))
        res.soc_true.append(float("nan") if gap or tr.soc_ref is None else float(tr.soc_ref[j]))
        lpm = float("nan")
        if tr.flow is not None and not gap:
            lpm = {"lpm": tr.flow[j], "hz": tr.flow[j] / FLOW_HZ_PER_LPM}.get(tr.flow_unit, float("nan"))
        res.flow_lpm.append(float(lpm))
        res.flow_pulses.append(int(self.pulses))
        res.grid_a.append(0.0)
        if k % self.decim == 0:
            res.cell_t.append(t)
            res.cell_v.append(np.array(v, dtype=float))
            res.cell_temp.append(np.array(temps, dtype=float))
            res.ambient.append(float("nan"))
            c = tr.coolant_c[j] if tr.coolant_c is not None and not gap else (float("nan"), float("nan"))
            res.coolant.append((float(c[0]), float(c[1])))

    def apply(self, t: float, act) -> float:
        self.outputs = act.outputs  # the contactors do what they are told; the record does not change
        return 0.0

    def step(self, dt: float, t: float) -> None:
        tr, k = self.tr, self.k
        j = int(self.ticks.sample[k])
        if tr.flow is not None and not self.ticks.gap[k] and not np.isnan(tr.flow[j]):
            if tr.flow_unit == "lpm":
                self.pulses += float(tr.flow[j]) * FLOW_HZ_PER_LPM * dt
            elif tr.flow_unit == "hz":
                self.pulses += float(tr.flow[j]) * dt
        self.k = k + 1

    def finish(self, res, t: float) -> None:
        pass
