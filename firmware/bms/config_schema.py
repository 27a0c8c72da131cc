# The configuration's schema and its validation: what bms.config.Config
# runs to fill a settings object from a chemistry preset plus the board's
# and the user's JSON. Needed only while a configuration is being built (at
# boot, on `config set`): Config imports it, runs fill() and drops it from
# the heap again with the chemistry presets, so neither is resident while
# the pack runs (bms/config.py).
#
# A bad value raises ConfigError naming the field, and no part of that
# config is used. Floats appear only here (the NTC table), never in the tick.
from array import array
from bms import faults as F
from bms.chemistry import PRESETS, COMMON_FAULTS
from bms.config import ConfigError

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


# key: (lo, hi) for integer settings; what each one is, for the error
# messages, is in bms/config_text.py (loaded only to form a message; a row
# may also carry it as a third item). Units are in the key names:
# mv, ma, mah, ms, dc (0.1 degC), pm (per mille), cpm (C-rate per mille),
# q16/q8 (fixed-point gains: value = raw * gain >> 16 or >> 8).
INT_KEYS = {
    "version": (1, 100),
    "cells": (1, MAX_CELLS),
    "temps": (1, MAX_TEMPS),
    "capacity_mah": (100, 2000000),
    "tick_ms": (10, 1000),
    "telemetry_ms": (0, 3600000),
    "max_charge_ma": (0, 1000000),
    "max_discharge_ma": (0, 1000000),
    "max_charge_cpm": (0, 5000),
    "max_discharge_cpm": (0, 10000),
    "limit_ramp_ma_per_s": (1, 1000000),
    "balance_floor_mv": (0, 5000),
    "balance_start_mv": (1, 500),
    "balance_stop_mv": (0, 500),
    "balance_max_cells": (0, MAX_CELLS),
    "balance_max_temp_dc": (-400, 1000),
    "balance_rest_ma": (0, 100000),
    "pump_start_dc": (-400, 1000),
    "pump_setpoint_dc": (-400, 1000),
    "pump_hyst_dc": (0, 200),
    "pump_min_duty_pm": (0, 1000),
    "pump_kp_pm_per_dc": (0, 1000),
    "pump_ki_pm_per_dc_s": (0, 100),
    "pump_ff_pm_at_1c": (0, 1000),
    "pump_force_pm": (-1, 1000),
    "pump_prime_every_ms": (0, 86400000),
    "pump_prime_ms": (0, 3600000),
    "imbalance_max_cpm": (0, 10000),
    "cooling_fault_limit_pm": (0, 1000),
    "coolant_implausible_dc": (10, 1000),
    "heater_on_dc": (-400, 400),
    "heater_off_dc": (-400, 400),
    "precharge_margin_mv": (1, 100000),
    "precharge_timeout_ms": (100, 60000),
    "precharge_tries": (1, 10),
    "precharge_retry_ms": (0, 600000),
    "current_gain_q8": (1, 1 << 20),
    "current_offset_ma": (-100000, 100000),
    "pack_gain_q8": (1, 1 << 20),
    "bus_gain_q8": (1, 1 << 20),
    "ntc_r25_ohm": (100, 1000000),
    "ntc_beta_k": (1000, 10000),
    "ntc_pullup_ohm": (100, 1000000),
    "adc_max": (255, 65535),
    "flow_hz_full": (1, 10000),
    "flow_spinup_ms": (0, 60000),
    "flow_window_ms": (100, 10000),
    "therm_short_raw": (0, 65535),
    "therm_open_raw": (0, 65535),
    # balancing measurement windows
    "balance_bleed_ms": (100, 60000),
    "balance_window_ms": (0, 10000),
    # state of charge
    "soc_charge_eff_pm": (800, 1000),
    "soc_rest_cpm": (0, 100),
    "soc_rest_ms": (0, 86400000),
    "soc_ocv_slope_mv_per_10pct": (1, 5000),
    "soc_full_mv": (1000, 5000),
    "soc_full_cpm": (1, 1000),
    "soc_full_ms": (0, 3600000),
    "soc_empty_mv": (1000, 5000),
    "soc_empty_ms": (0, 600000),
    "soc_cell_r_uohm": (0, 100000),
    "cell_r_uohm_ah": (0, 10000000),
    # the lag of the surface SOC behind the true SOC under current (soc.py)
    "soc_lag_fast_cpct_per_c": (0, 5000),
    "soc_lag_fast_ms": (1, 3600000),
    "soc_diffusion_cpct_per_c": (0, 5000),
    "soc_diffusion_tau_ms": (1, 3600000),
    "soc_capacity_min_dsoc_cpct": (1000, 10000),
    "soc_ccl_taper_cpct": (5000, 10000),
    "soc_dcl_taper_cpct": (0, 5000),
    "soc_limit_floor_pm": (0, 1000),
    # grid-support events
    "ocv_hyst_mv": (0, 200),
    "ocv_temp_uv_per_k": (0, 5000),
    "cell_accuracy_mv": (0, 100),
    "soc_polar_mv": (0, 1000),
    "grid_reserve_cpct": (0, 10000),
    "grid_vfloor_ms": (0, 60000),
    "grid_vfloor_rearm_mv": (0, 500),
    "close_hold_ms": (0, 60000),
    "grid_max_power_w": (1, 100000),
    "grid_max_duration_s": (1, 86400),
    "grid_margin_pm": (0, 1000),
    "grid_margin_unlearned_pm": (0, 1000),
    "grid_margin_unsynced_cpct": (0, 10000),
    "grid_margin_sync_cpct": (0, 10000),
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


def _what(key):
    # What an integer setting is, for its error message: the descriptions
    # are loaded for the message only (bms/config_text.py).
    row = INT_KEYS.get(key)
    if row is not None and len(row) > 2:
        return row[2]
    from bms.config import drop
    from bms.config_text import WHAT
    try:
        return WHAT.get(key, key)
    finally:
        WHAT = None
        drop(("bms.config_text",))


def _ok(v, lo, hi):
    # an integer in range (bool is a type of its own, not int)
    return type(v) is int and lo <= v <= hi


def _int(key, v, lo, hi, what=None):
    # what: None for the INT_KEYS rows (looked up only for an error)
    if _ok(v, lo, hi):
        return v
    if what is None:
        what = _what(key)
    if type(v) is not int or v is True or v is False:
        _err(key, "expected an integer (" + what + "), got " + repr(v))
    if v < lo or v > hi:
        _err(key, "%d out of range %d..%d (%s)" % (v, lo, hi, what))
    return v


def fill(cfg, user):
    """Validates the user's settings (a dict) and sets them, with what is
    derived from them, as attributes of cfg; raises ConfigError."""
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
    cfg.chemistry = chem
    for k in merged:
        v = merged[k]
        if k in INT_KEYS:
            row = INT_KEYS[k]
            setattr(cfg, k, _int(k, v, row[0], row[1], row[2] if len(row) > 2 else None))
        elif k in BOOL_KEYS:
            if v is not True and v is not False:
                _err(k, "expected true or false, got " + repr(v))
            setattr(cfg, k, v)
        elif k in STR_KEYS:
            allowed = STR_KEYS[k]
            if not isinstance(v, str) or (allowed and v not in allowed):
                _err(k, "expected one of " + repr(allowed) + ", got " + repr(v))
            setattr(cfg, k, v)
        elif k in PAIR_KEYS:
            if not isinstance(v, (list, tuple)) or len(v) != 2:
                _err(k, "expected two values in mV, got " + repr(v))
            setattr(cfg, k, (_int(k + "[0]", v[0], 0, 5000, "mV"), _int(k + "[1]", v[1], 0, 5000, "mV")))
        elif k in LIST_KEYS:
            pass  # checked below, once the cell count is known
        else:
            _err(k, "unknown setting")
    for k in ("cells", "temps", "capacity_mah"):
        if k not in merged:
            _err(k, "missing (" + _what(k) + ")")
    _derive_currents(cfg, merged)
    _check_order(cfg)
    _calibration(cfg, merged)
    _faults(cfg, preset.get("faults", {}), user.get("faults", {}))
    _check_limit_margins(cfg)
    _ntc_table(cfg)
    for k in TABLE_KEYS:
        _table(cfg, k, user.get(k, preset.get(k)))


def _table(cfg, key, rows):
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
        if not (_ok(r[0], xlo, xhi) and _ok(r[1], ylo, yhi)):  # names built for the message only
            _int("%s[%d][0]" % (key, i), r[0], xlo, xhi, xu)
            _int("%s[%d][1]" % (key, i), r[1], ylo, yhi, yu)
        xs[i], ys[i] = r[0], r[1]
        if i and xs[i] <= xs[i - 1]:
            _err("%s[%d][0]" % (key, i), "%d must be above the previous %d (rising)" % (xs[i], xs[i - 1]))
    if key == "ocv":
        if xs[0] != 0 or xs[-1] != 10000:
            _err(key, "must run from SOC 0 to 10000 (0.01 %)")
        for i in range(1, len(ys)):
            if ys[i] <= ys[i - 1]:
                _err("%s[%d][1]" % (key, i), "OCV must rise with SOC")
        cfg.ocv_cpct, cfg.ocv_mv = xs, ys
    else:
        cfg.cap_temp_dc, cfg.cap_temp_pm = xs, ys


def _derive_currents(cfg, merged):
    cap = cfg.capacity_mah
    if "max_charge_ma" not in merged:
        cfg.max_charge_ma = _int("max_charge_ma", cap * cfg.max_charge_cpm // 1000, 0, 1000000, "charge current limit from max_charge_cpm")
    if "soc_cell_r_uohm" not in merged:
        cfg.soc_cell_r_uohm = _int("soc_cell_r_uohm", cfg.cell_r_uohm_ah * 1000 // cap, 0, 100000,
                                    "cell resistance from cell_r_uohm_ah")
    if "max_discharge_ma" not in merged:
        cfg.max_discharge_ma = _int("max_discharge_ma", cap * cfg.max_discharge_cpm // 1000, 0, 1000000, "discharge current limit from max_discharge_cpm")


def _check_order(cfg):
    for k in ("imbalance_window_mv", "cell_valid_mv"):
        lo, hi = getattr(cfg, k)
        if not lo < hi:
            _err(k, "expected [low_mv, high_mv] with low < high, got " + repr([lo, hi]))
    if not cfg.therm_short_raw < cfg.therm_open_raw <= cfg.adc_max:
        _err("therm_open_raw", "expected therm_short_raw < therm_open_raw <= adc_max")
    s, z = cfg.ccl_taper_mv
    if not z > s or z - s > 1000:
        _err("ccl_taper_mv", "zero point must be 1..1000 mV above the start, got " + repr(cfg.ccl_taper_mv))
    s, z = cfg.dcl_taper_mv
    if not s > z or s - z > 1000:
        _err("dcl_taper_mv", "zero point must be 1..1000 mV below the start, got " + repr(cfg.dcl_taper_mv))
    if cfg.balance_stop_mv >= cfg.balance_start_mv:
        _err("balance_stop_mv", "must be below balance_start_mv (%d)" % cfg.balance_start_mv)
    if cfg.pump_setpoint_dc < cfg.pump_start_dc:
        _err("pump_setpoint_dc", "must not be below pump_start_dc (%d)" % cfg.pump_start_dc)
    if 0 < cfg.balance_window_ms < 2 * cfg.tick_ms:
        _err("balance_window_ms", "0 (no windows) or at least two ticks (2 x %d ms): one to settle, one to scan" % cfg.tick_ms)
    if cfg.soc_empty_mv >= cfg.soc_full_mv:
        _err("soc_empty_mv", "must be below soc_full_mv (%d)" % cfg.soc_full_mv)
    if not cfg.dcl_taper_mv[1] < cfg.soc_empty_mv <= cfg.dcl_taper_mv[0]:
        # the discharge limit keeps the lowest cell above its zero point:
        # an empty threshold outside the taper is never reached or too early
        _err("soc_empty_mv", "must lie in the discharge taper (%d, %d] mV" % (cfg.dcl_taper_mv[1], cfg.dcl_taper_mv[0]))
    if cfg.heater_off_dc <= cfg.heater_on_dc:
        _err("heater_off_dc", "must be above heater_on_dc (%d)" % cfg.heater_on_dc)
    # the flow window is kept as a ring of scans (measure.py)
    w = cfg.flow_window_ms // cfg.tick_ms
    if w < 1 or w > FLOW_WINDOW_SCANS_MAX:
        _err("flow_window_ms", "%d ms is %d scans at tick_ms %d; the window holds 1..%d scans"
             % (cfg.flow_window_ms, w, cfg.tick_ms, FLOW_WINDOW_SCANS_MAX))


def _check_limit_margins(cfg):
    # A load or charger that follows the limits must come to rest
    # short of the fault that blocks it: a limit reaching zero exactly
    # at the trip leaves the cell sitting on it, and sensor noise trips it.
    uv = cfg.fault_trip[F.index("CELL_UV")]
    ov = cfg.fault_trip[F.index("CELL_OV")]
    if cfg.dcl_taper_mv[1] <= uv:
        _err("dcl_taper_mv", "the discharge limit must reach zero above the CELL_UV trip (%d mV), got %d"
             % (uv, cfg.dcl_taper_mv[1]))
    if cfg.ccl_taper_mv[1] >= ov:
        _err("ccl_taper_mv", "the charge limit must reach zero below the CELL_OV trip (%d mV), got %d"
             % (ov, cfg.ccl_taper_mv[1]))


def _calibration(cfg, merged):
    n = cfg.cells
    gains = merged.get("cell_gain_q16", 6554)  # sensor LSB 0.1 mV
    offs = merged.get("cell_offset_mv", 0)
    cfg.cell_gain_q16 = array("i", [0] * n)
    cfg.cell_offset_mv = array("h", [0] * n)
    for name, src, dst, lo, hi in (("cell_gain_q16", gains, cfg.cell_gain_q16, 1, SMALL_INT // 65536 - 1),
                                   ("cell_offset_mv", offs, cfg.cell_offset_mv, -1000, 1000)):
        if isinstance(src, list):
            if len(src) != n:
                _err(name, "expected %d values (one per cell), got %d" % (n, len(src)))
            for i in range(n):
                v = src[i]
                dst[i] = v if _ok(v, lo, hi) else _int("%s[%d]" % (name, i), v, lo, hi, "calibration")
        else:
            v = _int(name, src, lo, hi, "calibration")
            for i in range(n):
                dst[i] = v


def _faults(cfg, preset, user):
    if not isinstance(user, dict):
        _err("faults", "expected an object of fault name: [trip, trip_delay_ms, recover, recover_delay_ms]")
    for name in user:
        if name not in F.NAMES:
            _err("faults." + name, "unknown fault; known: " + ", ".join(F.NAMES))
    nf = F.N_FAULTS
    cfg.fault_trip = array("i", [0] * nf)
    cfg.fault_trip_ms = array("i", [0] * nf)
    cfg.fault_rec = array("i", [0] * nf)
    cfg.fault_rec_ms = array("i", [0] * nf)
    cur = _current_faults(cfg)
    for i in range(nf):
        row = F.TABLE[i]
        name, unit = row[0], row[6]
        v = user.get(name, preset.get(name, COMMON_FAULTS.get(name, cur.get(name))))
        # the field names are built only for an error message: 45 rows of
        # them would be the largest garbage of a boot
        if not isinstance(v, (list, tuple)) or len(v) != 4:
            _err("faults." + name, "expected [trip_%s, trip_delay_ms, recover_%s, recover_delay_ms], got %r"
                 % (unit, unit, v))
        lim = 1000000 if unit == "ma" else 10000
        trip, tms, rec, rms = v[0], v[1], v[2], v[3]
        if not (_ok(trip, -lim, lim) and _ok(tms, 0, 600000) and _ok(rec, -lim, lim) and _ok(rms, 0, 3600000)):
            key = "faults." + name
            _int(key + ".trip_" + unit, trip, -lim, lim, "threshold in " + unit)
            _int(key + ".trip_delay_ms", tms, 0, 600000, "ms")
            _int(key + ".recover_" + unit, rec, -lim, lim, "threshold in " + unit)
            _int(key + ".recover_delay_ms", rms, 0, 3600000, "ms")
        # Flags and counts recover when they drop below the trip value.
        if row[2] == F.ABOVE and not (rec < trip or (unit == "n" and rec == trip)):
            _err("faults." + name + ".recover_" + unit, "%d must be below the trip threshold %d (hysteresis)" % (rec, trip))
        if row[2] == F.BELOW and not rec > trip:
            _err("faults." + name + ".recover_" + unit, "%d must be above the trip threshold %d (hysteresis)" % (rec, trip))
        if name in SCAN_ROWS:
            scans, why = SCAN_ROWS[name]
            least = scans * cfg.tick_ms
            if trip < least:
                if name in user or name in preset:
                    _err("faults." + name + ".trip_" + unit, "%d ms is less than %d scans at tick_ms %d (%d ms): %s"
                         % (trip, scans, cfg.tick_ms, least, why))
                trip = least  # the default stretched to the slower tick
        cfg.fault_trip[i] = trip
        cfg.fault_trip_ms[i] = tms
        cfg.fault_rec[i] = rec
        cfg.fault_rec_ms[i] = rms
    # Escalation order: a warning trips before its fault, a fault before
    # its critical level.
    for chain in (("CELL_OV_WARN", "CELL_OV", "CELL_OV_CRIT"), ("CELL_UV_WARN", "CELL_UV", "CELL_UV_CRIT"),
                  ("OT_WARN", "OT_CHG", "OT_CRIT"), ("OT_WARN", "OT_DSG", "OT_CRIT"),
                  ("OC_DSG", "SHORT_CIRCUIT"), ("COOLANT_FLOW_LOW", "PUMP_NO_FLOW")):
        for a, b in zip(chain, chain[1:]):
            ia, ib = F.index(a), F.index(b)
            above = F.TABLE[ia][2] == F.ABOVE
            ta, tb = cfg.fault_trip[ia], cfg.fault_trip[ib]
            if (above and not ta < tb) or (not above and not ta > tb):
                _err("faults." + a, "trip %d must be %s the %s trip %d" % (ta, "below" if above else "above", b, tb))
    # Charging must stop (CCL = 0) before the over-voltage fault trips.
    if cfg.ccl_taper_mv[1] > cfg.fault_trip[F.index("CELL_OV")]:
        _err("ccl_taper_mv", "zero point %d mV must not exceed the CELL_OV trip %d mV" % (cfg.ccl_taper_mv[1], cfg.fault_trip[F.index("CELL_OV")]))


def _current_faults(cfg):
    c, d = cfg.max_charge_ma, cfg.max_discharge_ma
    return {
        "OC_CHG": [c * 3 // 2 + 1000, 2000, c + 1000, 5000],
        "OC_DSG": [d * 3 // 2 + 1000, 2000, d + 1000, 5000],
        "SHORT_CIRCUIT": [d * 5 + 1000, 0, d + 1000, 1000],
        # noise of n cell readings plus the pack sensor's quantisation
        "SUM_MISMATCH": [30 * cfg.cells + 500, 1000, 15 * cfg.cells + 250, 5000],
    }


def _ntc_table(cfg):
    # Raw ADC counts of an NTC to ground under a pull-up, every 5 degC
    # from -40 to 125 degC, stored by ascending raw count.
    import math
    r25 = cfg.ntc_r25_ohm
    beta = cfg.ntc_beta_k
    pu = cfg.ntc_pullup_ohm
    full = cfg.adc_max
    temps = list(range(1250, -401, -50))
    raws = []
    for t in temps:
        tk = t / 10 + 273.15
        r = r25 * math.exp(beta * (1 / tk - 1 / 298.15))
        raws.append(int(round(full * r / (r + pu))))
    for i in range(1, len(raws)):
        if raws[i] <= raws[i - 1]:
            _err("ntc_beta_k", "thermistor table is not monotonic with these NTC settings")
    cfg.ntc_raw = array("H", raws)
    cfg.ntc_dc = array("h", temps)
