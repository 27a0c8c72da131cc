"""What the front end reports of the plant: cell voltages, temperatures,
current, pack and bus voltage, coolant and flow, as the raw counts of the
sim HAL's sensor frame (noise from the scenario's [sensors])."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host_tools.plant import Pack, ntc_counts


@dataclass
class Reading:
    cells_raw: list  # 0.1 mV counts
    temps_raw: list  # NTC ADC counts
    cool_raw: list  # coolant in, out (NTC counts)
    current_raw: int  # 10 mA counts, + = charge
    pack_raw: int  # 10 mV counts
    bus_raw: int  # 10 mV counts
    flow_pulses: int
    cells_v: np.ndarray  # the true terminal voltages (V)


class Noise:
    """The sensors' standard normals, a row per tick: n for the cells, m for
    the thermistors, one for the current. Drawn a block of rows at a time:
    the same numbers in the same order as drawing each tick's in turn (one
    stream, consumed in sequence), at a fraction of the calls; the compiled
    loop (host_tools/fused.py) reads the same block."""

    ROWS = 4096

    def __init__(self, rng: np.random.Generator, width: int):
        self.rng, self.width = rng, width
        self.block = np.empty((0, width))
        self.pos = 0

    def row(self) -> np.ndarray:
        if self.pos >= len(self.block):
            self.block = self.rng.standard_normal((self.ROWS, self.width))
            self.pos = 0
        self.pos += 1
        return self.block[self.pos - 1]


class Sensing:
    def __init__(self, sc, rng: np.random.Generator):
        n, m = sc.pack.cells, sc.pack.temps
        self.n, self.m = n, m
        self.rng = rng
        self.noise = Noise(rng, n + m + 1)
        # thermistors spread evenly along the string
        self.sensor_idx = np.round((np.arange(m) + 0.5) * n / m - 0.5).astype(int)
        self.noise_v = sc.sensors.cell_noise_v
        self.noise_t = sc.sensors.temp_noise_k
        self.noise_i = sc.sensors.current_noise_a
        self.offset_i = sc.sensors.current_offset_a
        self.gain_i = 1.0 + sc.sensors.current_gain_error

    @classmethod
    def exact(cls, n: int, m: int) -> "Sensing":
        """Counts of the values as given: no noise, no offset (a recorded
        trace already is what its sensors reported)."""
        self = cls.__new__(cls)
        self.n, self.m, self.rng, self.noise = n, m, None, None
        self.noise_v = self.noise_t = self.noise_i = self.offset_i = 0.0
        self.gain_i = 1.0
        return self

    def read(self, pack: Pack, inj=None) -> Reading:
        """What the front end reports of the simulated pack now."""
        v = pack.cell_v()
        # the front end reads through the sense wires (a bled cell reads low)
        v_sensed = pack.sensed_v(v) if pack.sense_ohm else v
        return self.counts(v_sensed, pack.temp[self.sensor_idx], (pack.coolant_in_c, pack.coolant_out_c),
                           pack.current_a, float(np.add.reduce(v)), pack.bus_v,
                           pack.flow_pulses, inj, v)

    def counts(self, cells_v, temps_c, coolant_c, current_a: float, pack_v: float, bus_v: float,
               flow_pulses: float, inj=None, true_v=None) -> Reading:
        """The sensor frame's counts for these values (V, degC at each
        thermistor, coolant in/out degC, A with + = charge), with the
        scenario's sensor noise and any active sensor fault injections."""
        n, m = self.n, self.m
        z = self.noise.row() if self.noise is not None else None
        # (np.minimum/np.maximum: np.clip's result without its Python layers)
        cells = np.minimum(np.maximum(np.rint((cells_v + (self.noise_v * z[:n] if z is not None else 0.0)) * 10000), 0),
                           65535).astype(int)
        t = np.concatenate((temps_c + (self.noise_t * z[n:n + m] if z is not None else 0.0), coolant_c))
        traw = np.minimum(np.maximum(np.rint(ntc_counts(t)), 0), 4095).astype(int)
        if inj is not None and inj.active:
            cells = inj.cells(cells)
            traw = inj.temps(traw)
        traw = traw.tolist()
        i_meas = current_a * self.gain_i + self.offset_i + (self.noise_i * float(z[n + m]) if z is not None else 0.0)
        return Reading(cells.tolist(), traw[:m], traw[m:], int(round(i_meas * 100)),
                       int(round(pack_v * 100)), int(round(bus_v * 100)),
                       inj.flow(flow_pulses) if inj is not None else int(flow_pulses),
                       cells_v if true_v is None else true_v)
