"""Fault injectors: one per fault class, acting on the plant's physics or
on what its sensors report. A scenario's [[fault]] entries name them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# kind -> what it does (the docs for scenario authors)
KINDS = {
    "charger_no_stop": "the charger ignores the BMS limits, its CV setpoint and its termination",
    "load_short": "a short across the DC bus (value_ohm, default 0.01 ohm) while the contactors are closed",
    "cell_internal_short": "a soft internal short in cell `cell` (value_ohm, default 0.05 ohm): fast self-discharge and heat",
    "open_sense_wire": "the sense wire above cell `cell` opens: that channel reads 0 V and the next one the sum of both",
    "thermistor_open": "thermistor `sensor` opens (reads full scale)",
    "thermistor_short": "thermistor `sensor` shorts (reads zero)",
    "stuck_adc": "cell channel `cell` freezes at its present reading",
    "frontend_comm_lost": "the front end stops answering: frames carry no measurements",
    "pump_seized": "the coolant pump stops turning: no flow whatever the duty",
    "coolant_leak": "coolant leaks: flow falls to 25 % over `duration` (default 120 s)",
    "coolant_sensor_open": "the coolant outlet thermistor opens (reads full scale)",
    "load_ignores_limits": "the load or inverter keeps drawing its set current whatever the BMS's discharge limit",
    "contactor_welded": "the main contactors' tips weld: they stay closed when commanded open",
    "precharge_resistor_open": "the precharge resistor is open: the bus never charges",
    "internal_error": "an exception is raised inside one firmware tick (sim HAL test hook)",
    "watchdog_reset": "the firmware boots after a watchdog reset",
    "short_pulse": "a short through the load shorter than one scan (2 ms at 3x the SHORT_CIRCUIT trip): gone before the next "
                   "scan, so only a front end's own comparator sees it (BQ76952 SCD, through --afe bq76952; nothing else can)",
    "flow_meter_missing": "the flow meter loses a share `missing` of its pulses (a dirty or loose Hall sensor)",
    "contactor_aux_chatter": "the positive contactor's auxiliary contact reads closed although the tips are open",
}
CELL_KINDS = ("cell_internal_short", "open_sense_wire", "stuck_adc")
SENSOR_KINDS = ("thermistor_open", "thermistor_short")
# Kinds that may come and go: an optional `on` time repeated every `period`
# (`count` times, 0: without end) and an overall `duration` (0: without end).
INTERMITTENT_KINDS = ("open_sense_wire", "thermistor_open", "thermistor_short", "stuck_adc", "frontend_comm_lost",
                      "coolant_sensor_open", "flow_meter_missing", "contactor_aux_chatter")
AUX_POS = 4  # feedback bit of the positive contactor (frames.IN_* / plant.OUT_POS)


def present(f, t: float) -> bool:
    """Whether fault f (a scenario.Fault) acts at time t: its pattern."""
    x = t - f.at_s
    if x < -1e-9:
        return False
    if f.duration_s and x >= f.duration_s - 1e-9:
        return False
    if not f.period_s:
        return True
    k = int((x + 1e-9) // f.period_s)
    if f.count and k >= f.count:
        return False
    return x - k * f.period_s < f.on_s - 1e-9

FLAG_NO_DATA = 1
FLAG_RAISE = 2
FLAG_SHORT_PULSE = 8  # one tick: the chip model sees a short between two scans (host_tools/mp/chips/afe_sim.py)


@dataclass
class Active:
    kind: str
    t: float
    cell: int = 0
    sensor: int = 0
    value: float = 0.0
    frozen: int = -1
    fault: object = None  # the scenario's Fault (its pattern)


class Injectors:
    def __init__(self):
        self.active: list[Active] = []
        self.charger_no_stop = False
        self.no_data = False
        self.raise_once = False
        self.pulse_once = False
        self.leak_t0: float | None = None
        self.leak_s = 120.0
        self.load_ignores_limits = False
        self.coolant_sensor_open = None
        self.now = 0.0
        self.flow_lost = 0.0  # meter pulses lost so far
        self.flow_last = None

    def _on(self, a) -> bool:
        return a.fault is None or present(a.fault, self.now)

    def inject(self, f, t: float, pack):
        a = Active(f.kind, t, f.cell, f.sensor, f.value_ohm, fault=f)
        self.active.append(a)
        k = f.kind
        if k == "charger_no_stop":
            self.charger_no_stop = True
        elif k == "load_short":
            pack.short_ohm = f.value_ohm or 0.01
        elif k == "cell_internal_short":
            pack.internal_short_ohm[f.cell] = f.value_ohm or 0.05
        elif k == "frontend_comm_lost":
            self.no_data = a
        elif k == "pump_seized":
            pack.flow_factor = 0.0
        elif k == "coolant_leak":
            self.leak_t0 = t
            self.leak_s = f.duration_s or 120.0
        elif k == "coolant_sensor_open":
            self.coolant_sensor_open = a
        elif k == "load_ignores_limits":
            self.load_ignores_limits = True
        elif k == "contactor_welded":
            pack.welded = True
        elif k == "precharge_resistor_open":
            pack.precharge_open = True
        elif k == "internal_error":
            self.raise_once = True
        elif k == "short_pulse":
            self.pulse_once = True
        elif k == "flow_meter_missing":
            a.value = f.missing
        return a

    def physics(self, t: float, pack):
        self.now = t
        if self.leak_t0 is not None and pack.flow_factor > 0:
            pack.flow_factor = max(0.25, 1.0 - 0.75 * (t - self.leak_t0) / self.leak_s)

    def cells(self, raw: np.ndarray) -> np.ndarray:
        for a in self.active:
            if not self._on(a):
                if a.kind == "stuck_adc":
                    a.frozen = -1
                continue
            if a.kind == "open_sense_wire":
                n = len(raw)
                other = a.cell + 1 if a.cell + 1 < n else a.cell - 1
                raw[other] = min(65535, int(raw[a.cell]) + int(raw[other]))
                raw[a.cell] = 0
            elif a.kind == "stuck_adc":
                if a.frozen < 0:
                    a.frozen = int(raw[a.cell])
                raw[a.cell] = a.frozen
        return raw

    def temps(self, raw: np.ndarray, full: int = 4095) -> np.ndarray:
        """raw: cell sensors then coolant in, coolant out."""
        if self.coolant_sensor_open and self._on(self.coolant_sensor_open):
            raw[-1] = full
        for a in self.active:
            if not self._on(a):
                continue
            if a.kind == "thermistor_open":
                raw[a.sensor] = full
            elif a.kind == "thermistor_short":
                raw[a.sensor] = 0
        return raw

    def flow(self, pulses: float) -> int:
        """The meter's counter as reported: a flow_meter_missing fault loses
        its share of the pulses while present."""
        if self.flow_last is not None:
            for a in self.active:
                if a.kind == "flow_meter_missing" and self._on(a):
                    self.flow_lost += (pulses - self.flow_last) * a.value
        self.flow_last = pulses
        return int(pulses - self.flow_lost)

    def aux(self, feedback: int) -> int:
        """Contactor feedback bits as read: a chattering auxiliary contact
        reads closed while present."""
        for a in self.active:
            if a.kind == "contactor_aux_chatter" and self._on(a):
                feedback |= AUX_POS
        return feedback

    def flags(self) -> int:
        f = FLAG_NO_DATA if self.no_data and self._on(self.no_data) else 0
        if self.raise_once:
            f |= FLAG_RAISE
            self.raise_once = False
        if self.pulse_once:
            f |= FLAG_SHORT_PULSE
            self.pulse_once = False
        return f
