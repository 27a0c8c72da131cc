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


class Sensing:
    def __init__(self, sc, rng: np.random.Generator):
        n, m = sc.pack.cells, sc.pack.temps
        self.n, self.m = n, m
        self.rng = rng
        # thermistors spread evenly along the string
        self.sensor_idx = np.round((np.arange(m) + 0.5) * n / m - 0.5).astype(int)
        self.noise_v = sc.sensors.cell_noise_v
        self.noise_t = sc.sensors.temp_noise_k
        self.noise_i = sc.sensors.current_noise_a
        self.offset_i = sc.sensors.current_offset_a
        self.gain_i = 1.0 + sc.sensors.current_gain_error

    def read(self, pack: Pack, inj=None) -> Reading:
        n, m, rng = self.n, self.m, self.rng
        v = pack.cell_v()
        # the front end reads through the sense wires (a bled cell reads low)
        v_sensed = pack.sensed_v(v) if pack.sense_ohm else v
        # (np.minimum/np.maximum: np.clip's result without its Python layers)
        cells = np.minimum(np.maximum(np.rint((v_sensed + self.noise_v * rng.standard_normal(n)) * 10000), 0),
                           65535).astype(int)
        t = np.concatenate((pack.temp[self.sensor_idx] + self.noise_t * rng.standard_normal(m),
                            (pack.coolant_in_c, pack.coolant_out_c)))
        traw = np.minimum(np.maximum(np.rint(ntc_counts(t)), 0), 4095).astype(int)
        if inj is not None and inj.active:
            cells = inj.cells(cells)
            traw = inj.temps(traw)
        traw = traw.tolist()
        i_meas = pack.current_a * self.gain_i + self.offset_i + self.noise_i * rng.standard_normal()
        return Reading(cells.tolist(), traw[:m], traw[m:], int(round(i_meas * 100)),
                       int(round(float(np.add.reduce(v)) * 100)), int(round(pack.bus_v * 100)),
                       inj.flow(pack.flow_pulses) if inj is not None else int(pack.flow_pulses), v)
