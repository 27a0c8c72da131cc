"""The compiled lock-step loop (host_tools/fused_loop.c) behind
host_tools/loop.py's run_loop, for the ECM pack plant.

Python does every tick the same way, but most of a tick's wall time went to
CPython and numpy running a 16-element plant: 5-10 us of interpreter per
vector operation, dozens of operations per tick, beside a firmware tick of
~40-90 us. The C loop runs the routine ticks whole: the sensor frame, the
exchange (one write, one read), the record, the profile step's current and
the pack's step. Whatever is rare stays Python:

- a tick with firmware events, a fault bit or contactor state that changed,
  or the internal-error flag: C exchanges its frames, then LockStep.after()
  finishes it (PK_POST);
- a tick with a fault injection or an action due, a day whose weather is
  not drawn yet, a fresh block of sensor noise, or a value the frame cannot
  carry: LockStep.tick() runs it whole (PK_PRE); so does the one tick of an
  injected exception or short pulse;
- the end of a profile step (PK_STEP_END), and every tick of a run whose
  limits a CAN inverter takes, or whose frames or decisions are recorded.

The injections once begun (host_tools/injectors.py) run in C too: the
readings' (open sense wire, stuck channel, thermistors, coolant sensor,
silent front end, flow meter, auxiliary contact, with their intermittent
patterns) and the pack's (load and internal shorts, seized pump, leak,
welded contactor, open precharge resistor, charger and load that ignore
the limits).

The pack's arrays are shared (C updates the Pack's numpy arrays in place);
its scalars and the loop's books are copied into the context before each
pk_run() and back after. The same seed gives the same record to the last
bit with or without it: tests/test_fused_loop.py runs both.
"""
from __future__ import annotations

import math

import numpy as np

from host_tools.link import FirmwareError
from host_tools.loop import Frame
from host_tools.pack_plant import PackPlant
from host_tools.sensing import Reading

try:
    from host_tools._fused_loop import ffi, lib
except ImportError:  # not built (make setup builds it): every tick in Python
    ffi = lib = None

KINDS = {"rest": 0, "household": 1, "charge": 2, "discharge": 3}
ENDED = {1: "duration", 2: "firmware", 3: "charger", 4: "timeout"}
CHUNK = 4096  # record rows per pk_run() call: Python regains control (Ctrl-C) within ~CHUNK ticks
# Pack scalars copied in and out; (Pack attribute, context field)
PACK_SCALARS = ("current_a", "pump_duty", "coolant_c", "coolant_in_c", "coolant_out_c", "flow_pulses", "flow_lpm",
                "flow_factor", "pump_energy_j", "heater_energy_j", "balance_energy_j", "bus_v")
PACK_ARRAYS = ("soc", "cap_as", "r0", "r1", "ocv_now", "v1", "temp", "path")
INJ_KINDS = {"open_sense_wire": 1, "stuck_adc": 2, "thermistor_open": 3, "thermistor_short": 4,
             "coolant_sensor_open": 5, "frontend_comm_lost": 6, "flow_meter_missing": 7, "contactor_aux_chatter": 8,
             # their effect is in the pack's or the injectors' state, copied in and out
             "charger_no_stop": 0, "load_short": 0, "cell_internal_short": 0, "pump_seized": 0, "coolant_leak": 0,
             "load_ignores_limits": 0, "contactor_welded": 0, "precharge_resistor_open": 0,
             # one tick (a flag Python sends), or only at boot
             "internal_error": 0, "short_pulse": 0, "watchdog_reset": 0}
STEP_FIELDS = ("duration_s", "timeout_s", "cv_v", "termination_a", "start_h", "solar_start_h", "solar_end_h",
               "solar_peak_a", "load_day_a", "load_night_a")
DOUBLE_SERIES = ("t", "vmax", "vmin", "tmax", "tmin", "cur", "soc_min", "soc_max", "duty", "ccl", "dcl", "flow_lpm",
                 "vmax_meas", "vmin_meas", "tspread", "soc_fw", "soc_true", "grid_a")
INT_SERIES = ("outputs", "balancing", "flow_pulses")


def built() -> bool:
    return lib is not None


def _ptr(kind: str, a: np.ndarray):
    return ffi.cast(kind, a.ctypes.data)


class FusedLoop:
    @classmethod
    def for_loop(cls, loop, required: bool = False) -> "FusedLoop | None":
        """The compiled loop for this LockStep, or None where it cannot run
        it (not built, another plant, a recorded or CAN run): then Python
        runs every tick. required: say why instead."""
        why = None
        if lib is None:
            why = "host_tools._fused_loop is not built (make setup builds it)"
        elif type(loop.plant) is not PackPlant:
            why = f"the plant is a {type(loop.plant).__name__}, not the ECM pack"
        elif loop.plant.inverter is not None or loop.link.recorder is not None or loop.decisions:
            why = "a CAN inverter, a frame recorder or decisions are kept per tick"
        elif not hasattr(loop.link, "rfd") or loop.link.sensor.size != 44 + 2 * (loop.plant.n + loop.plant.sensing.m):
            why = "the link is not a sim-HAL stream with this pack's frame"
        if why:
            if required:
                raise RuntimeError("the compiled loop cannot run this: " + why)
            return None
        return cls(loop)

    def __init__(self, loop):
        self.loop = loop
        plant, link = loop.plant, loop.link
        pack, sensing = plant.pack, plant.sensing
        n, m = plant.n, sensing.m
        self.n, self.m = n, m
        c = self.c = ffi.new("pk_ctx *")
        self._keep = []  # everything the context points into
        c.n, c.m = n, m
        c.rfd, c.wfd, c.timeout_ms = link.rfd, link.wfd, link.timeout_ms
        c.tx, c.tx_size = ffi.from_buffer("unsigned char[]", link._tx), len(link._tx)
        c.rx, c.rx_size = ffi.from_buffer("unsigned char[]", link._rx), len(link._rx)
        self._keep += [c.tx, c.rx]
        self.ocv_x = np.ascontiguousarray(pack.ocv.soc, dtype=np.float64)
        self.ocv_y = np.ascontiguousarray(pack.ocv.volts, dtype=np.float64)
        c.ocv_x, c.ocv_y, c.ocv_len = _ptr("double *", self.ocv_x), _ptr("double *", self.ocv_y), len(self.ocv_x)
        c.ocv_lo_slope, c.ocv_hi_slope = float(pack.ocv.lo_slope), float(pack.ocv.hi_slope)
        self.scratch = np.zeros(8 * n)
        c.scratch = _ptr("double *", self.scratch)
        self.iscratch = np.zeros(n + m + 2, dtype=np.int64)
        c.iscratch = _ptr("long long *", self.iscratch)
        c.ambient_c, c.ambient_swing_c, c.ambient_peak_h = pack.ambient_c, pack.ambient_swing_c, pack.ambient_peak_h
        c.coulombic_eff, c.tau, c.heat_cap = pack.coulombic_eff, pack.tau, pack.heat_cap
        c.lag_k0, c.lag_k1 = pack.lag_k
        c.lag_tau0, c.lag_tau1 = pack.lag_tau
        c.balance_ohm, c.sense_ohm = pack.balance_ohm, pack.sense_ohm
        self.sensor_idx = np.ascontiguousarray(sensing.sensor_idx, dtype=np.int64)
        c.sensor_idx = _ptr("long long *", self.sensor_idx)
        c.gain_q16 = _ptr("long long *", loop.gain_q16)
        c.offset_mv = _ptr("long long *", loop.offset_mv)
        c.noise_v, c.noise_t, c.noise_i = sensing.noise_v, sensing.noise_t, sensing.noise_i
        c.offset_i, c.gain_i = sensing.offset_i, sensing.gain_i
        c.clock0_ms, c.tick_ms, c.dt, c.decim = loop.clock0, loop.tick_ms, loop.dt, plant.decim
        if plant.meter is not None:
            c.meter_interval_s, bins = plant.meter
            c.meter_bins, c.meter_len = _ptr("double *", bins), len(bins)
        self.days = np.full(self._days_needed(plant), np.nan)
        c.day_factor, c.day_factors = _ptr("double *", self.days), len(self.days)
        # the record's columns
        self.cols = {name: np.zeros(CHUNK) for name in DOUBLE_SERIES}
        self.cols.update({name: np.zeros(CHUNK, dtype=np.int64) for name in INT_SERIES})
        self.cols["heater"] = np.zeros(CHUNK, dtype=np.uint8)
        for name, a in self.cols.items():
            setattr(c, "r_" + name, _ptr("unsigned char *" if a.dtype == np.uint8 else
                                          "long long *" if a.dtype == np.int64 else "double *", a))
        c.cap = CHUNK
        cap_d = CHUNK // plant.decim + 1
        self.dcols = {"t": np.zeros(cap_d), "cell_v": np.zeros((cap_d, n)), "cell_temp": np.zeros((cap_d, n)),
                      "ambient": np.zeros(cap_d), "cool_in": np.zeros(cap_d), "cool_out": np.zeros(cap_d)}
        for name, a in self.dcols.items():
            setattr(c, "d_" + name, _ptr("double *", a))
        c.cap_d = cap_d
        self.v_true = np.zeros(n)
        c.v_true = _ptr("double *", self.v_true)
        self.prev_faults = bytearray(8)
        # ticks run whole in C, finished by Python after C's exchange, run whole by Python; calls per answer
        self.stats = {"fused": 0, "finished": 0, "python": 0, "calls": {}}

    @staticmethod
    def _days_needed(plant) -> int:
        days = 1
        for s in plant.profile:
            if s.kind == "household":
                days = max(days, int((s.duration_s + s.start_h * 3600) // 86400) + 2)
        return days

    def usable(self) -> bool:
        """Whether the next tick may be fused: every active injection is one
        C knows (at most lib.INJ_MAX), and none sends its one-tick flag."""
        plant = self.loop.plant
        inj = plant.inj
        if inj.raise_once or inj.pulse_once or len(inj.active) > lib.INJ_MAX:
            return False
        m2 = self.m + 2
        return all(a.kind in INJ_KINDS and 0 <= a.cell < self.n and 0 <= a.sensor < m2 for a in inj.active)

    # -- the context in and out ------------------------------------------------
    def _sync_in(self) -> None:
        c, loop = self.c, self.loop
        plant = loop.plant
        pack, sensing = plant.pack, plant.sensing
        for name in PACK_ARRAYS:
            a = getattr(pack, name)
            if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous):
                a = np.ascontiguousarray(a, dtype=np.float64)
                setattr(pack, name, a)
            setattr(c, name, _ptr("double *", a))
        for j in (0, 1):
            pack.lag[j] = np.ascontiguousarray(pack.lag[j], dtype=np.float64)
        c.lag0, c.lag1 = _ptr("double *", pack.lag[0]), _ptr("double *", pack.lag[1])
        pack.self_discharge_a = np.ascontiguousarray(pack.self_discharge_a, dtype=np.float64)
        c.sd_a = _ptr("double *", pack.self_discharge_a)
        pack.bleed = np.ascontiguousarray(pack.bleed, dtype=bool)
        c.bleed = _ptr("unsigned char *", pack.bleed)
        for name in PACK_SCALARS:
            setattr(c, name, float(getattr(pack, name)))
        c.heater_on, c.outputs, c.physical = int(pack.heater_on), pack.outputs, pack.physical
        noise = sensing.noise
        c.noise, c.noise_rows, c.noise_pos = _ptr("double *", noise.block), len(noise.block), noise.pos
        inj = plant.inj
        c.flow_last = inj.flow_last if inj.flow_last is not None else 0.0
        c.flow_last_valid = inj.flow_last is not None
        c.flow_lost = inj.flow_lost
        c.inj_n = len(inj.active)
        c.inj_no_data = c.inj_cool_open = -1
        for j, a in enumerate(inj.active):
            f = a.fault
            c.inj_kind[j], c.inj_cell[j], c.inj_sensor[j], c.inj_frozen[j] = INJ_KINDS[a.kind], a.cell, a.sensor, a.frozen
            c.inj_at_s[j], c.inj_duration_s[j], c.inj_on_s[j] = f.at_s, f.duration_s, f.on_s
            c.inj_period_s[j], c.inj_count[j], c.inj_value[j] = f.period_s, f.count, a.value
            if a is inj.no_data:
                c.inj_no_data = j
            if a is inj.coolant_sensor_open:
                c.inj_cool_open = j
        c.charger_no_stop, c.load_ignores_limits = int(inj.charger_no_stop), int(inj.load_ignores_limits)
        c.leak = inj.leak_t0 is not None
        c.leak_t0, c.leak_s = inj.leak_t0 or 0.0, inj.leak_s
        c.welded, c.precharge_open, c.short_ohm = int(pack.welded), int(pack.precharge_open), pack.short_ohm
        pack.internal_short_ohm = np.ascontiguousarray(pack.internal_short_ohm, dtype=np.float64)
        c.short_r, c.shorted = _ptr("double *", pack.internal_short_ohm), int(pack._shorted)
        step = plant.profile[plant.step_i]
        c.kind = KINDS[step.kind]
        c.step_current_a = step.current_a
        for name in STEP_FIELDS:
            setattr(c, name, float(getattr(step, name)))
        c.step_t0, c.step_ran, c.step_low_s, c.enable = plant.step_t0, int(plant.step_ran), plant.step_low_s, int(plant.enable)
        for d, f in plant.day_factor.items():
            if 0 <= d < len(self.days):
                self.days[d] = f
        due = [x[0].at_s for x in (plant.faults_pending, plant.actions_pending) if x]
        c.next_due = min(due) if due else math.inf
        c.k, c.stop_at = loop.k, loop.stop_at if loop.stop_at is not None else math.inf
        self.prev_faults[:] = sum(b << i for i, b in enumerate(loop.prev_faults)).to_bytes(8, "little")
        ffi.memmove(c.prev_faults, self.prev_faults, 8)
        c.prev_state = loop.prev_state
        c.internal_error = int(loop.res.internal_error)
        c.grid_wh, c.grid_energy_wh = loop.grid_wh, loop.res.grid_energy_wh
        c.capacity_mah = loop.res.capacity_mah_fw
        c.count = c.count_d = 0

    def _sync_out(self, ticks: int) -> None:
        c, loop = self.c, self.loop
        plant, res = loop.plant, loop.res
        pack = plant.pack
        for name in PACK_SCALARS:
            setattr(pack, name, getattr(c, name))
        pack.heater_on, pack.outputs, pack.physical = bool(c.heater_on), c.outputs, c.physical
        plant.sensing.noise.pos = c.noise_pos
        plant.step_ran, plant.step_low_s = bool(c.step_ran), c.step_low_s
        loop.k = c.k
        loop.grid_wh = c.grid_wh
        res.grid_energy_wh = c.grid_energy_wh
        res.capacity_mah_fw = c.capacity_mah
        inj = plant.inj
        for j, a in enumerate(inj.active):
            a.frozen = c.inj_frozen[j]
        inj.flow_lost = c.flow_lost
        if c.flow_last_valid:
            inj.flow_last = c.flow_last
        if ticks:
            pack.ambient_now = c.ambient_now
            pack._shorted = bool(c.shorted)
            inj.now = loop.t = (c.k - 1) * c.dt
        self._flush()

    def _flush(self) -> None:
        c, res = self.c, self.loop.res
        n_rows, n_d = c.count, c.count_d
        if n_rows:
            for name in DOUBLE_SERIES + INT_SERIES:
                getattr(res, name).extend(self.cols[name][:n_rows].tolist())
            res.heater.extend(self.cols["heater"][:n_rows].astype(bool).tolist())
            res.gap.extend([False] * n_rows)
        if n_d:
            d = self.dcols
            res.cell_t.extend(d["t"][:n_d].tolist())
            res.cell_v.extend(d["cell_v"][:n_d].copy())
            res.cell_temp.extend(d["cell_temp"][:n_d].copy())
            res.ambient.extend(d["ambient"][:n_d].tolist())
            res.coolant.extend(zip(d["cool_in"][:n_d].tolist(), d["cool_out"][:n_d].tolist()))
        c.count = c.count_d = 0

    # -- running ------------------------------------------------------------------
    def run(self) -> bool:
        """Runs ticks until one needs Python, then lets Python have it; True
        when the loop reached stop_at."""
        loop, c = self.loop, self.c
        plant = loop.plant
        k0 = loop.k
        self._sync_in()
        code = lib.pk_run(c)
        self._sync_out(c.k - k0)
        st = self.stats
        st["fused"] += c.k - k0
        st["calls"][code] = st["calls"].get(code, 0) + 1
        if code == lib.PK_FULL:
            return False
        if code == lib.PK_STOP:
            return True
        if code == lib.PK_PRE:
            st["python"] += 1
            loop.tick()
        elif code == lib.PK_POST:
            st["finished"] += 1
            self._finish_tick()
        elif code == lib.PK_STEP_END:
            self._step_end(ENDED[c.ended])
        else:
            self._raise(code)
        return False

    def _finish_tick(self) -> None:
        """Tick k's frames are exchanged (by C); the rest is LockStep.after()."""
        loop, c = self.loop, self.c
        plant, link = loop.plant, loop.link
        k = loop.k
        t = loop.t = k * loop.dt
        plant.inj.now = t  # (C did Injectors.physics() for this tick)
        plant.solar, plant.load = c.solar, c.load
        fields = link.sensor.unpack_from(link._tx)
        n, m = self.n, self.m
        cells, temps = list(fields[5:5 + n]), list(fields[5 + n:5 + n + m])
        cur, pack_raw, bus_raw, cin, cout, flow, inputs = fields[5 + n + m:12 + n + m]
        plant.reading = Reading(cells, temps, [cin, cout], cur, pack_raw, bus_raw, flow, self.v_true.copy())
        f = Frame(fields[2], cells, temps, cur, pack_raw, bus_raw, cin, cout, flow, inputs)
        act = link.parse(k)
        loop.after(t, k, f, c.vmax_meas, c.vmin_meas, act)

    def _step_end(self, ended: str) -> None:
        """PackPlant.apply()'s end of a step, for the tick C just ran."""
        loop = self.loop
        plant, res = loop.plant, loop.res
        step = plant.profile[plant.step_i]
        t = loop.t
        res.step_ends.append((plant.step_i, step.kind, t, ended))
        if step.kind == "charge":
            res.charge_ends.append((t, res.vmax[-1] - res.vmin[-1], ended))  # this tick's true spread
        plant.step_i += 1
        plant.step_t0 = t + loop.dt
        plant.step_ran = False
        plant.step_low_s = 0.0
        if plant.step_i < len(plant.profile) and plant.profile[plant.step_i].kind != "charge":
            plant.inj.charger_no_stop = False

    def _raise(self, code: int) -> None:
        link = self.loop.link
        log = link._read_log()
        if code == lib.PK_ERR_TIMEOUT:
            raise FirmwareError("firmware did not answer (the receive timed out): " + log)
        if code == lib.PK_ERR_EOF:
            raise FirmwareError("firmware closed the connection: " + log)
        if code == lib.PK_ERR_FRAME:
            f = link.act.unpack_from(link._rx)
            raise FirmwareError(f"bad actuator frame for seq {self.loop.k}: magic {f[0]:#x}, seq {f[3]}")
        raise FirmwareError(f"the link to the firmware failed (errno {self.c.err}): " + log)
