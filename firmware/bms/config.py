# Configuration: one validated set of integer settings with units in their
# names, built from a chemistry preset plus the board's and the user's JSON.
#
# Validation happens here, once, before anything is applied: a bad value
# raises ConfigError naming the field, and no part of that config is used.
# Floats appear only here (the NTC table), never in the tick.
from array import array
from bms import faults as F
from bms.chemistry import PRESETS, COMMON_FAULTS

MAX_CELLS = 256
MAX_TEMPS = 64
SMALL_INT = 1 << 30  # 31-bit small-int limit of the boards (exclusive)
FLOW_WINDOW_SCANS_MAX = 200  # 1.2 KB of ring at most

# Rows whose signal is judged per scan: a threshold in ms must span enough
# scans to mean the same at every tick. STUCK_READING: a channel with ~1 mV
# of noise on a 0.1 mV ADC repeats a reading by chance on a few scans in a
# row (p ~ 0.03 per scan), never on ten. STALE_MEASUREMENT: one missed scan
# is not a silent front end. name: (scans at least, what)
SCAN_ROWS = {
    "STUCK_READING": (10, "a noisy channel repeats a reading on a few scans in a row by chance"),
    "STALE_MEASUREMENT": (2, "one missed scan is not a silent front end"),
}


class ConfigError(ValueError):
    pass


# key: (lo, hi, what) for integer settings. Units are in the key names:
# mv, ma, mah, ms, dc (0.1 degC), pm (per mille), cpm (C-rate per mille),
# q16/q8 (fixed-point gains: value = raw * gain >> 16 or >> 8).
INT_KEYS = {
    "version": (1, 100, "configuration schema version"),
    "cells": (1, MAX_CELLS, "cells in series"),
    "temps": (1, MAX_TEMPS, "cell temperature sensors"),
    "capacity_mah": (100, 2000000, "rated capacity"),
    "tick_ms": (10, 1000, "control period"),
    "telemetry_ms": (0, 3600000, "console telemetry period (0: off)"),
    "max_charge_ma": (0, 1000000, "charge current limit"),
    "max_discharge_ma": (0, 1000000, "discharge current limit"),
    "max_charge_cpm": (0, 5000, "charge current limit as C-rate"),
    "max_discharge_cpm": (0, 10000, "discharge current limit as C-rate"),
    "limit_ramp_ma_per_s": (1, 1000000, "current limit rise rate"),
    "balance_floor_mv": (0, 5000, "lowest cell voltage that may be bled"),
    "balance_start_mv": (1, 500, "start balancing above lowest cell +"),
    "balance_stop_mv": (0, 500, "stop balancing at lowest cell +"),
    "balance_max_cells": (0, MAX_CELLS, "cells bled at once"),
    "balance_max_temp_dc": (-400, 1000, "no balancing above"),
    "balance_rest_ma": (0, 100000, "pack counts as resting below"),
    "pump_start_dc": (-400, 1000, "pump starts at"),
    "pump_setpoint_dc": (-400, 1000, "hottest-cell target of the pump controller"),
    "pump_hyst_dc": (0, 200, "pump stop hysteresis"),
    "pump_min_duty_pm": (0, 1000, "pump minimum duty while running"),
    "pump_kp_pm_per_dc": (0, 1000, "pump proportional gain"),
    "pump_ki_pm_per_dc_s": (0, 100, "pump integral gain"),
    "pump_ff_pm_at_1c": (0, 1000, "pump feed-forward duty at a 1C current"),
    "pump_force_pm": (-1, 1000, "fixed pump duty (-1: controller)"),
    "pump_prime_every_ms": (0, 86400000, "idle time before a prime/flush run (0: never)"),
    "pump_prime_ms": (0, 3600000, "length of a prime/flush run"),
    "imbalance_max_cpm": (0, 10000, "judge the cell spread only below this current (C-rate per mille)"),
    "cooling_fault_limit_pm": (0, 1000, "share of the current limits while cooling is faulty"),
    "coolant_implausible_dc": (10, 1000, "coolant in/out further apart than this is implausible"),
    "heater_on_dc": (-400, 400, "heater on below"),
    "heater_off_dc": (-400, 400, "heater off at"),
    "precharge_margin_mv": (1, 100000, "precharge done within"),
    "precharge_timeout_ms": (100, 60000, "precharge time limit"),
    "precharge_tries": (1, 10, "precharge attempts"),
    "precharge_retry_ms": (0, 600000, "pause between precharge attempts"),
    "current_gain_q8": (1, 1 << 20, "current sensor gain"),
    "current_offset_ma": (-100000, 100000, "current sensor offset"),
    "pack_gain_q8": (1, 1 << 20, "pack voltage sensor gain"),
    "bus_gain_q8": (1, 1 << 20, "bus voltage sensor gain"),
    "ntc_r25_ohm": (100, 1000000, "thermistor resistance at 25 degC"),
    "ntc_beta_k": (1000, 10000, "thermistor beta"),
    "ntc_pullup_ohm": (100, 1000000, "thermistor divider resistor"),
    "adc_max": (255, 65535, "thermistor ADC full scale"),
    "flow_hz_full": (1, 10000, "flow meter frequency at full pump duty"),
    "flow_spinup_ms": (0, 60000, "time the pump takes to reach its flow"),
    "flow_window_ms": (100, 10000, "flow meter pulses are counted over this sliding window"),
    "therm_short_raw": (0, 65535, "thermistor reads shorted at or below"),
    "therm_open_raw": (0, 65535, "thermistor reads open at or above"),
    # balancing measurement windows
    "balance_bleed_ms": (100, 60000, "bleed time between measurement windows"),
    "balance_window_ms": (0, 10000, "bleeding paused for an undistorted scan (0: the front end does it)"),
    # state of charge
    "soc_charge_eff_pm": (800, 1000, "charge (coulombic) efficiency"),
    "soc_rest_cpm": (0, 100, "pack rests below this current (C-rate per mille)"),
    "soc_rest_ms": (0, 86400000, "rest before the OCV may correct the SOC"),
    "soc_ocv_slope_mv_per_10pct": (1, 5000, "OCV correction only where the curve is this steep"),
    "soc_full_mv": (1000, 5000, "end of charge: highest cell at or above"),
    "soc_full_cpm": (1, 1000, "end of charge: current tapered below (C-rate per mille)"),
    "soc_full_ms": (0, 3600000, "end of charge: held for"),
    "soc_empty_mv": (1000, 5000, "bottom of the usable range: lowest cell at or below"),
    "soc_empty_ms": (0, 600000, "bottom of the usable range: held for"),
    "soc_cell_r_uohm": (0, 100000, "cell resistance (R0) for the IR corrections (default: cell_r_uohm_ah / capacity)"),
    "cell_r_uohm_ah": (0, 10000000, "the chemistry's R0 x capacity, for the soc_cell_r_uohm default"),
    # the lag of the surface SOC behind the true SOC under current (soc.py)
    "soc_lag_fast_cpct_per_c": (0, 5000, "fast part (electrolyte, charge transfer beyond R0): SOC gap per 1C"),
    "soc_lag_fast_ms": (1, 3600000, "its time constant"),
    "soc_diffusion_cpct_per_c": (0, 5000, "slow part (solid diffusion): SOC gap per 1C"),
    "soc_diffusion_tau_ms": (1, 3600000, "its time constant"),
    "soc_capacity_min_dsoc_cpct": (1000, 10000, "SOC span between synchronisations for a capacity estimate"),
    "soc_ccl_taper_cpct": (5000, 10000, "charge limit derated above this SOC"),
    "soc_dcl_taper_cpct": (0, 5000, "discharge limit derated below this SOC"),
    "soc_limit_floor_pm": (0, 1000, "share of the limits left at 100 % / 0 % SOC"),
    # grid-support events
    "ocv_hyst_mv": (0, 200, "a rested cell's OCV may sit this far from the table (hysteresis branches)"),
    "ocv_temp_uv_per_k": (0, 5000, "OCV shift per kelvin away from 25 degC (entropic coefficient, magnitude)"),
    "cell_accuracy_mv": (0, 100, "front end's cell voltage accuracy"),
    "soc_polar_mv": (0, 1000, "largest overpotential under load beyond soc_cell_r_uohm x I"),
    "grid_reserve_cpct": (0, 10000, "owner's reserve: grid events never go below this SOC"),
    "grid_vfloor_ms": (0, 60000, "an event ends once the lowest cell has been at the reserve's OCV for"),
    "grid_vfloor_rearm_mv": (0, 500, "after that, no event until the lowest cell is this far above it again"),
    "close_hold_ms": (0, 60000, "at boot, after the first valid scan and the pending fault trips, the contactors wait this much longer"),
    "grid_max_power_w": (1, 100000, "largest grid-event power accepted"),
    "grid_max_duration_s": (1, 86400, "longest grid event accepted"),
    "grid_margin_pm": (0, 1000, "reserve margin per SOC span counted since the last synchronisation"),
    "grid_margin_unlearned_pm": (0, 1000, "the same while the capacity is still the rated one (no estimate yet)"),
    "grid_margin_unsynced_cpct": (0, 10000, "reserve margin before any synchronisation since boot"),
    "grid_margin_sync_cpct": (0, 10000, "reserve margin for the error of a synchronisation itself"),
}
BOOL_KEYS = ("balance_no_neighbours", "auto_close", "enable_input", "heater_enabled")
TABLE_KEYS = {"ocv": ("cpct", "mv", 0, 10000, 0, 5000), "capacity_temp": ("dc", "pm", -400, 1000, 1, 1000)}
STR_KEYS = {"chemistry": tuple(PRESETS), "hal": ("sim",), "board": None, "name": None}
PAIR_KEYS = ("ccl_taper_mv", "dcl_taper_mv", "imbalance_window_mv", "cell_valid_mv")
LIST_KEYS = ("cell_gain_q16", "cell_offset_mv")

DEFAULTS = {
    "tick_ms": 100,
    "telemetry_ms": 1000,
    "limit_ramp_ma_per_s": 10000,
    "balance_start_mv": 15,
    "balance_stop_mv": 5,
    "balance_max_cells": 8,
    "balance_max_temp_dc": 450,
    "balance_rest_ma": 2000,
    "balance_no_neighbours": False,
    # Pump control (this project's tuning on the simulated 16S 100 Ah pack).
    "pump_start_dc": 330,
    "pump_setpoint_dc": 380,
    "pump_hyst_dc": 30,
    "pump_min_duty_pm": 200,
    "pump_kp_pm_per_dc": 15,
    "pump_ki_pm_per_dc_s": 1,
    "pump_ff_pm_at_1c": 300,
    "pump_force_pm": -1,
    "pump_prime_every_ms": 1800000,
    "pump_prime_ms": 60000,
    "heater_enabled": False,
    # 30 % of the current makes ~9 % of the heat (I^2): what a stagnant
    # cold plate can take (margin)
    "cooling_fault_limit_pm": 300,
    # above 0.7C the cells' resistance spread and the knees blur the spread
    "imbalance_max_cpm": 700,
    "coolant_implausible_dc": 200,
    "heater_on_dc": 50,
    "heater_off_dc": 100,
    "precharge_margin_mv": 2000,
    "precharge_timeout_ms": 3000,
    "precharge_tries": 3,
    "precharge_retry_ms": 5000,
    "auto_close": True,
    "current_gain_q8": 2560,  # sensor LSB 10 mA
    "current_offset_ma": 0,
    "pack_gain_q8": 2560,  # sensor LSB 10 mV
    "bus_gain_q8": 2560,
    # 10 kOhm NTC, B25/85 = 3435 K (e.g. Murata NCP15XH103F03RC), 10 kOhm
    # pull-up to the ADC reference, 12-bit ADC.
    "ntc_r25_ohm": 10000,
    "ntc_beta_k": 3435,
    "ntc_pullup_ohm": 10000,
    "adc_max": 4095,
    # Hall flow meter in the coolant loop (YF-S201 class, ~7.5 Hz per L/min
    # as commonly published) and a ~15 L/min pump at full duty.
    "flow_hz_full": 112,
    "flow_spinup_ms": 3000,
    # ~20 pulses at the lowest running duty: enough to judge a flow by
    "flow_window_ms": 1000,
    "therm_short_raw": 20,
    "therm_open_raw": 4075,
    # A cell channel outside this window is an open sense wire or a dead
    # channel, not a cell voltage.
    "cell_valid_mv": [500, 5000],
    # The contactors close only while the enable input (key switch, E-stop
    # chain) is on; boards without one set this to false.
    "enable_input": True,
    # Measurement windows: where the bleed current flows through the sense
    # wires, a reading taken while bleeding is off by I x R_wire, so the
    # firmware pauses the bleeding for a scan every balance_bleed_ms and
    # holds the cell voltages in between (which delays what protection sees
    # of a bled cell by up to that long). Front ends that stop the bleeding
    # for their own conversions need no firmware windows (0, the default):
    # e.g. the LTC6811/LTC6813 cell conversion command ADCV with its DCP
    # bit at 0 ("discharge not permitted", LTC6811-1/-2 datasheet, command
    # codes).
    "balance_bleed_ms": 2000,
    "balance_window_ms": 0,
    # LFP's coulombic efficiency is above 99.5 % (margin: 99.8 %).
    "soc_charge_eff_pm": 998,
    "soc_rest_cpm": 5,
    "soc_rest_ms": 1800000,
    # 2 mV per % SOC: +-5 mV of noise averaged over 16 scans is ~1 mV, 0.5 %.
    "soc_ocv_slope_mv_per_10pct": 20,
    "soc_full_cpm": 50,
    "soc_full_ms": 20000,
    "soc_empty_ms": 2000,
    "soc_capacity_min_dsoc_cpct": 5000,
    # no surface-SOC lag unless the chemistry preset (or the user) gives one
    "soc_lag_fast_cpct_per_c": 0,
    "soc_lag_fast_ms": 10000,
    "soc_diffusion_cpct_per_c": 0,
    "soc_diffusion_tau_ms": 300000,
    "soc_ccl_taper_cpct": 9500,
    "soc_dcl_taper_cpct": 1000,
    "soc_limit_floor_pm": 200,
    "grid_reserve_cpct": 3000,
    "grid_max_power_w": 10000,
    "grid_max_duration_s": 14400,
    # The counted SOC drifts with the capacity error and the current
    # sensor's error: keep 3 % of the SOC counted since the last
    # synchronisation above the reserve once the capacity has been
    # estimated, 10 % while it is still the rated value (a series pack's
    # weakest cell can be 5-10 % below it), plus 1 % for the
    # synchronisation itself (end of charge reads ~99.5 % true), and 10 %
    # of SOC before any synchronisation (margins).
    "grid_margin_pm": 30,
    "grid_margin_sync_cpct": 100,
    "grid_margin_unlearned_pm": 100,
    "grid_margin_unsynced_cpct": 1000,
    # The cell-voltage floor of grid events (grid.py, soc_bounds.py): the
    # accuracy is the front end's total error (margin: the BQ76952 and
    # LTC681x datasheets give a few mV; a direct ADC is worse, set it).
    "cell_accuracy_mv": 10,
    "grid_vfloor_ms": 5000,
    "grid_vfloor_rearm_mv": 30,
    # At boot the contactors wait for the first complete, valid scan, then
    # while any fault row is still debouncing (bms/contactor.py), then this
    # much longer (an extra margin for a slow sensor; none by default).
    "close_hold_ms": 0,
}


def _err(key, msg):
    raise ConfigError("config." + key + ": " + msg)


def _int(key, v, lo, hi, what):
    if type(v) is not int or v is True or v is False:
        _err(key, "expected an integer (" + what + "), got " + repr(v))
    if v < lo or v > hi:
        _err(key, "%d out of range %d..%d (%s)" % (v, lo, hi, what))
    return v


class Config:
    """Validated settings. Build with Config(dict); raises ConfigError."""

    def __init__(self, user):
        if not isinstance(user, dict):
            raise ConfigError("config: expected an object, got " + repr(type(user)))
        chem = user.get("chemistry", "LFP")
        if chem not in PRESETS:
            _err("chemistry", "unknown chemistry " + repr(chem) + ", expected one of " + ", ".join(sorted(PRESETS)))
        preset = PRESETS[chem]
        merged = {}
        for k in DEFAULTS:
            merged[k] = DEFAULTS[k]
        for k in preset:
            if k != "faults" and k not in TABLE_KEYS:
                merged[k] = preset[k]
        for k in user:
            if k != "faults" and k not in TABLE_KEYS:
                merged[k] = user[k]
        self.chemistry = chem
        for k in merged:
            v = merged[k]
            if k in INT_KEYS:
                lo, hi, what = INT_KEYS[k]
                setattr(self, k, _int(k, v, lo, hi, what))
            elif k in BOOL_KEYS:
                if v is not True and v is not False:
                    _err(k, "expected true or false, got " + repr(v))
                setattr(self, k, v)
            elif k in STR_KEYS:
                allowed = STR_KEYS[k]
                if not isinstance(v, str) or (allowed and v not in allowed):
                    _err(k, "expected one of " + repr(allowed) + ", got " + repr(v))
                setattr(self, k, v)
            elif k in PAIR_KEYS:
                if not isinstance(v, (list, tuple)) or len(v) != 2:
                    _err(k, "expected two values in mV, got " + repr(v))
                setattr(self, k, (_int(k + "[0]", v[0], 0, 5000, "mV"), _int(k + "[1]", v[1], 0, 5000, "mV")))
            elif k in LIST_KEYS:
                pass  # checked below, once the cell count is known
            else:
                _err(k, "unknown setting")
        for k in ("cells", "temps", "capacity_mah"):
            if k not in merged:
                _err(k, "missing (" + INT_KEYS[k][2] + ")")
        self._derive_currents(merged)
        self._check_order()
        self._calibration(merged)
        self._faults(preset.get("faults", {}), user.get("faults", {}))
        self._check_limit_margins()
        self._ntc_table()
        for k in TABLE_KEYS:
            self._table(k, user.get(k, preset.get(k)))

    def _table(self, key, rows):
        # [[x, y], ...] with x strictly rising: the OCV table (SOC 0.01 %,
        # mV, covering 0..10000) or the usable-capacity table (0.1 degC,
        # per mille).
        xu, yu, xlo, xhi, ylo, yhi = TABLE_KEYS[key]
        if not isinstance(rows, list) or len(rows) < 2:
            _err(key, "expected a list of at least two [%s, %s] pairs, got %r" % (xu, yu, rows))
        xs = array("h", [0] * len(rows))
        ys = array("H" if yu == "mv" else "h", [0] * len(rows))
        for i in range(len(rows)):
            r = rows[i]
            if not isinstance(r, (list, tuple)) or len(r) != 2:
                _err("%s[%d]" % (key, i), "expected [%s, %s], got %r" % (xu, yu, r))
            xs[i] = _int("%s[%d][0]" % (key, i), r[0], xlo, xhi, xu)
            ys[i] = _int("%s[%d][1]" % (key, i), r[1], ylo, yhi, yu)
            if i and xs[i] <= xs[i - 1]:
                _err("%s[%d][0]" % (key, i), "%d must be above the previous %d (rising)" % (xs[i], xs[i - 1]))
        if key == "ocv":
            if xs[0] != 0 or xs[-1] != 10000:
                _err(key, "must run from SOC 0 to 10000 (0.01 %)")
            for i in range(1, len(ys)):
                if ys[i] <= ys[i - 1]:
                    _err("%s[%d][1]" % (key, i), "OCV must rise with SOC")
            self.ocv_cpct, self.ocv_mv = xs, ys
        else:
            self.cap_temp_dc, self.cap_temp_pm = xs, ys

    def _derive_currents(self, merged):
        cap = self.capacity_mah
        if "max_charge_ma" not in merged:
            self.max_charge_ma = _int("max_charge_ma", cap * self.max_charge_cpm // 1000, 0, 1000000, "charge current limit from max_charge_cpm")
        if "soc_cell_r_uohm" not in merged:
            self.soc_cell_r_uohm = _int("soc_cell_r_uohm", self.cell_r_uohm_ah * 1000 // cap, 0, 100000,
                                        "cell resistance from cell_r_uohm_ah")
        if "max_discharge_ma" not in merged:
            self.max_discharge_ma = _int("max_discharge_ma", cap * self.max_discharge_cpm // 1000, 0, 1000000, "discharge current limit from max_discharge_cpm")

    def _check_order(self):
        for k in ("imbalance_window_mv", "cell_valid_mv"):
            lo, hi = getattr(self, k)
            if not lo < hi:
                _err(k, "expected [low_mv, high_mv] with low < high, got " + repr([lo, hi]))
        if not self.therm_short_raw < self.therm_open_raw <= self.adc_max:
            _err("therm_open_raw", "expected therm_short_raw < therm_open_raw <= adc_max")
        s, z = self.ccl_taper_mv
        if not z > s or z - s > 1000:
            _err("ccl_taper_mv", "zero point must be 1..1000 mV above the start, got " + repr(self.ccl_taper_mv))
        s, z = self.dcl_taper_mv
        if not s > z or s - z > 1000:
            _err("dcl_taper_mv", "zero point must be 1..1000 mV below the start, got " + repr(self.dcl_taper_mv))
        if self.balance_stop_mv >= self.balance_start_mv:
            _err("balance_stop_mv", "must be below balance_start_mv (%d)" % self.balance_start_mv)
        if self.pump_setpoint_dc < self.pump_start_dc:
            _err("pump_setpoint_dc", "must not be below pump_start_dc (%d)" % self.pump_start_dc)
        if 0 < self.balance_window_ms < 2 * self.tick_ms:
            _err("balance_window_ms", "0 (no windows) or at least two ticks (2 x %d ms): one to settle, one to scan" % self.tick_ms)
        if self.soc_empty_mv >= self.soc_full_mv:
            _err("soc_empty_mv", "must be below soc_full_mv (%d)" % self.soc_full_mv)
        if not self.dcl_taper_mv[1] < self.soc_empty_mv <= self.dcl_taper_mv[0]:
            # the discharge limit keeps the lowest cell above its zero point:
            # an empty threshold outside the taper is never reached or too early
            _err("soc_empty_mv", "must lie in the discharge taper (%d, %d] mV" % (self.dcl_taper_mv[1], self.dcl_taper_mv[0]))
        if self.heater_off_dc <= self.heater_on_dc:
            _err("heater_off_dc", "must be above heater_on_dc (%d)" % self.heater_on_dc)
        # the flow window is kept as a ring of scans (measure.py)
        w = self.flow_window_ms // self.tick_ms
        if w < 1 or w > FLOW_WINDOW_SCANS_MAX:
            _err("flow_window_ms", "%d ms is %d scans at tick_ms %d; the window holds 1..%d scans"
                 % (self.flow_window_ms, w, self.tick_ms, FLOW_WINDOW_SCANS_MAX))

    def _check_limit_margins(self):
        # A load or charger that follows the limits must come to rest
        # short of the fault that blocks it: a limit reaching zero exactly
        # at the trip leaves the cell sitting on it, and sensor noise trips it.
        uv = self.fault_trip[F.index("CELL_UV")]
        ov = self.fault_trip[F.index("CELL_OV")]
        if self.dcl_taper_mv[1] <= uv:
            _err("dcl_taper_mv", "the discharge limit must reach zero above the CELL_UV trip (%d mV), got %d"
                 % (uv, self.dcl_taper_mv[1]))
        if self.ccl_taper_mv[1] >= ov:
            _err("ccl_taper_mv", "the charge limit must reach zero below the CELL_OV trip (%d mV), got %d"
                 % (ov, self.ccl_taper_mv[1]))

    def _calibration(self, merged):
        n = self.cells
        gains = merged.get("cell_gain_q16", 6554)  # sensor LSB 0.1 mV
        offs = merged.get("cell_offset_mv", 0)
        self.cell_gain_q16 = array("i", [0] * n)
        self.cell_offset_mv = array("h", [0] * n)
        for name, src, dst, lo, hi in (("cell_gain_q16", gains, self.cell_gain_q16, 1, SMALL_INT // 65536 - 1),
                                       ("cell_offset_mv", offs, self.cell_offset_mv, -1000, 1000)):
            if isinstance(src, list):
                if len(src) != n:
                    _err(name, "expected %d values (one per cell), got %d" % (n, len(src)))
                for i in range(n):
                    dst[i] = _int("%s[%d]" % (name, i), src[i], lo, hi, "calibration")
            else:
                v = _int(name, src, lo, hi, "calibration")
                for i in range(n):
                    dst[i] = v

    def _faults(self, preset, user):
        if not isinstance(user, dict):
            _err("faults", "expected an object of fault name: [trip, trip_delay_ms, recover, recover_delay_ms]")
        for name in user:
            if name not in F.NAMES:
                _err("faults." + name, "unknown fault; known: " + ", ".join(F.NAMES))
        nf = F.N_FAULTS
        self.fault_trip = array("i", [0] * nf)
        self.fault_trip_ms = array("i", [0] * nf)
        self.fault_rec = array("i", [0] * nf)
        self.fault_rec_ms = array("i", [0] * nf)
        cur = self._current_faults()
        for i in range(nf):
            row = F.TABLE[i]
            name, unit = row[0], row[6]
            v = user.get(name, preset.get(name, COMMON_FAULTS.get(name, cur.get(name))))
            key = "faults." + name
            if not isinstance(v, (list, tuple)) or len(v) != 4:
                _err(key, "expected [trip_%s, trip_delay_ms, recover_%s, recover_delay_ms], got %r" % (unit, unit, v))
            lim = 1000000 if unit == "ma" else 10000
            trip = _int(key + ".trip_" + unit, v[0], -lim, lim, "threshold in " + unit)
            tms = _int(key + ".trip_delay_ms", v[1], 0, 600000, "ms")
            rec = _int(key + ".recover_" + unit, v[2], -lim, lim, "threshold in " + unit)
            rms = _int(key + ".recover_delay_ms", v[3], 0, 3600000, "ms")
            # Flags and counts recover when they drop below the trip value.
            if row[2] == F.ABOVE and not (rec < trip or (unit == "n" and rec == trip)):
                _err(key + ".recover_" + unit, "%d must be below the trip threshold %d (hysteresis)" % (rec, trip))
            if row[2] == F.BELOW and not rec > trip:
                _err(key + ".recover_" + unit, "%d must be above the trip threshold %d (hysteresis)" % (rec, trip))
            if name in SCAN_ROWS:
                scans, why = SCAN_ROWS[name]
                least = scans * self.tick_ms
                if trip < least:
                    if name in user or name in preset:
                        _err(key + ".trip_" + unit, "%d ms is less than %d scans at tick_ms %d (%d ms): %s"
                             % (trip, scans, self.tick_ms, least, why))
                    trip = least  # the default stretched to the slower tick
            self.fault_trip[i] = trip
            self.fault_trip_ms[i] = tms
            self.fault_rec[i] = rec
            self.fault_rec_ms[i] = rms
        # Escalation order: a warning trips before its fault, a fault before
        # its critical level.
        for chain in (("CELL_OV_WARN", "CELL_OV", "CELL_OV_CRIT"), ("CELL_UV_WARN", "CELL_UV", "CELL_UV_CRIT"),
                      ("OT_WARN", "OT_CHG", "OT_CRIT"), ("OT_WARN", "OT_DSG", "OT_CRIT"),
                      ("OC_DSG", "SHORT_CIRCUIT"), ("COOLANT_FLOW_LOW", "PUMP_NO_FLOW")):
            for a, b in zip(chain, chain[1:]):
                ia, ib = F.index(a), F.index(b)
                above = F.TABLE[ia][2] == F.ABOVE
                ta, tb = self.fault_trip[ia], self.fault_trip[ib]
                if (above and not ta < tb) or (not above and not ta > tb):
                    _err("faults." + a, "trip %d must be %s the %s trip %d" % (ta, "below" if above else "above", b, tb))
        # Charging must stop (CCL = 0) before the over-voltage fault trips.
        if self.ccl_taper_mv[1] > self.fault_trip[F.index("CELL_OV")]:
            _err("ccl_taper_mv", "zero point %d mV must not exceed the CELL_OV trip %d mV" % (self.ccl_taper_mv[1], self.fault_trip[F.index("CELL_OV")]))

    def _current_faults(self):
        c, d = self.max_charge_ma, self.max_discharge_ma
        return {
            "OC_CHG": [c * 3 // 2 + 1000, 2000, c + 1000, 5000],
            "OC_DSG": [d * 3 // 2 + 1000, 2000, d + 1000, 5000],
            "SHORT_CIRCUIT": [d * 5 + 1000, 0, d + 1000, 1000],
            # noise of n cell readings plus the pack sensor's quantisation
            "SUM_MISMATCH": [30 * self.cells + 500, 1000, 15 * self.cells + 250, 5000],
        }

    def _ntc_table(self):
        # Raw ADC counts of an NTC to ground under a pull-up, every 5 degC
        # from -40 to 125 degC, stored by ascending raw count.
        import math
        r25 = self.ntc_r25_ohm
        beta = self.ntc_beta_k
        pu = self.ntc_pullup_ohm
        full = self.adc_max
        temps = list(range(1250, -401, -50))
        raws = []
        for t in temps:
            tk = t / 10 + 273.15
            r = r25 * math.exp(beta * (1 / tk - 1 / 298.15))
            raws.append(int(round(full * r / (r + pu))))
        for i in range(1, len(raws)):
            if raws[i] <= raws[i - 1]:
                _err("ntc_beta_k", "thermistor table is not monotonic with these NTC settings")
        self.ntc_raw = array("H", raws)
        self.ntc_dc = array("h", temps)
