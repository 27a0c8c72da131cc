# Raw readings to engineering units and the scalar signals of the tick,
# with the channel-level diagnosis that needs the raw values: channels out
# of range, thermistors open or shorted (left out of the min/max), channels
# stuck at one reading, and how long the front end has been silent.
from bms import ticks
from array import array
from micropython import const
from bms import signals as S

CURRENT_MAX_MA = const(1048576)  # 2**20 mA, past the 1,000,000 mA largest trip
PACK_MAX_MV = const(2097152)  # 2**21 mV, past 256 cells x 5 V


STALE_CAP_MS = 1 << 24  # keeps the stale counter a small int


class Measure:
    def __init__(self, cfg, kernels):
        self.k = kernels
        self.gain = cfg.cell_gain_q16
        self.off = cfg.cell_offset_mv
        self.ntc_raw = cfg.ntc_raw
        self.ntc_dc = cfg.ntc_dc
        self.ntc_n = len(cfg.ntc_raw)
        self.cur_gain = cfg.current_gain_q8
        self.cur_off = cfg.current_offset_ma
        # Raw readings past these would make raw x gain a big int on a
        # 32-bit port (31-bit small ints): they saturate first.
        self.cur_raw_max = 0x3FFFFFFF // cfg.current_gain_q8
        self.pack_raw_max = 0x3FFFFFFF // cfg.pack_gain_q8
        self.bus_raw_max = 0x3FFFFFFF // cfg.bus_gain_q8
        self.pack_gain = cfg.pack_gain_q8
        self.bus_gain = cfg.bus_gain_q8
        self.cell_lo, self.cell_hi = cfg.cell_valid_mv
        # therm_minmax's settings and results: the valid raw range
        self.tio = array("i", [cfg.therm_short_raw, cfg.therm_open_raw, 0, 0])
        self.cool_implausible = cfg.coolant_implausible_dc
        # the flow window is a time (flow_window_ms), held as that many
        # scans at the configured tick (config.py checks the count)
        self.flow_n_max = cfg.flow_window_ms // cfg.tick_ms
        self.flow_pulses = array("H", [0] * self.flow_n_max)
        self.flow_ms = array("i", [0] * self.flow_n_max)
        self.flow_ms_total = 0
        self.flow_i = 0
        self.flow_n = 0
        self.last_ms = 0
        self.started = False
        self.held_ms = 0  # time the cell readings have been held (bleeding)
        # a measurement window comes every balance_bleed_ms: never hold longer
        self.hold_max_ms = cfg.balance_bleed_ms + 2 * cfg.tick_ms

    def tick(self, st, now_ms):
        if self.started:
            dt = ticks.diff(now_ms, self.last_ms)
            if dt < 0:
                dt = 0
            elif dt > 10000:
                dt = 10000  # a stalled loop must not look like a long fault
        else:
            dt = 0
            self.started = True
        self.last_ms = now_ms
        st.now_ms = now_ms
        st.dt_ms = dt
        st.ticks += 1
        sig = st.sig
        if not st.fresh:
            s = sig[S.STALE_MS] + dt
            sig[S.STALE_MS] = s if s < STALE_CAP_MS else STALE_CAP_MS
            return
        sig[S.STALE_MS] = 0
        k = self.k
        n = st.n_cells
        mm = st.scratch
        if st.bleed_scan and self.held_ms < self.hold_max_ms:
            # Scanned while cells were bled (balance.py): the sense wires
            # carried the bleed current, so keep the cell voltages of the
            # last undistorted scan; the next measurement window renews them.
            self.held_ms += dt
        else:
            k.scale_cells(st.raw_cells, self.gain, self.off, st.cell_mv, n)
            total = k.minmax_sum(st.cell_mv, n, mm)
            sig[S.CELL_MIN_MV] = mm[0]
            sig[S.CELL_MAX_MV] = mm[1]
            sig[S.CELL_MIN_IDX] = mm[2]
            sig[S.CELL_MAX_IDX] = mm[3]
            sig[S.CELL_SUM_MV] = total
            sig[S.CELL_SPREAD_MV] = mm[1] - mm[0]
            # An out-of-range channel (open wire, dead channel) stays in the
            # min/max: a reading above the over-voltage trip blocks charging
            # at once, whatever VOLTAGE_CHANNEL later makes of it.
            sig[S.BAD_CELL_CH] = k.count_outside(st.cell_mv, n, self.cell_lo, self.cell_hi)
            self.held_ms = 0
        # A bled cell's reading is off but still moves with the noise: a
        # stuck channel shows in every scan.
        sig[S.STUCK_MS] = k.stuck_track(st.raw_cells, st.prev_raw, st.stuck_acc, n, dt)
        k.ntc_interp(st.raw_temps, st.n_temps, self.ntc_raw, self.ntc_dc, self.ntc_n, st.temp_dc)
        # Open or shorted thermistors read as extreme temperatures: count
        # them and keep them out of the min/max (THERMISTOR reports them).
        tio = self.tio
        bad = k.therm_minmax(st.raw_temps, st.temp_dc, st.n_temps, tio)
        if bad < st.n_temps:
            sig[S.TEMP_MAX_DC] = tio[3]
            sig[S.TEMP_MIN_DC] = tio[2]
        sig[S.BAD_THERM] = bad
        k.ntc_interp(st.raw_cool, 2, self.ntc_raw, self.ntc_dc, self.ntc_n, st.cool_dc)
        bad = k.therm_minmax(st.raw_cool, st.cool_dc, 2, tio)
        if bad == 0:
            cin = st.cool_dc[0]
            cout = st.cool_dc[1]
            d = cout - cin
            if d > self.cool_implausible or d < -self.cool_implausible:
                bad = 1  # both read, but they cannot both be right
            else:
                sig[S.COOLANT_IN_DC] = cin
                sig[S.COOLANT_OUT_DC] = cout
        sig[S.BAD_COOL] = bad
        # Saturations written out, not calls to a helper: a call costs the
        # unix port ~2,000 instructions, more than the whole arithmetic.
        lim = self.cur_raw_max
        v = st.raw_current
        v = lim if v > lim else (-lim if v < -lim else v)
        ma = ((v * self.cur_gain) >> 8) + self.cur_off
        # Saturated just past the largest current trip the configuration
        # accepts (1 kA), so every current row still trips, while the
        # charge counted from it per step (mA x ms) stays a small int.
        ma = CURRENT_MAX_MA if ma > CURRENT_MAX_MA else (-CURRENT_MAX_MA if ma < -CURRENT_MAX_MA else ma)
        sig[S.CURRENT_MA] = ma
        sig[S.CHARGE_MA] = ma if ma > 0 else 0
        sig[S.DISCHARGE_MA] = -ma if ma < 0 else 0
        lim = self.pack_raw_max
        v = st.raw_pack
        v = ((lim if v > lim else (-lim if v < -lim else v)) * self.pack_gain) >> 8
        sig[S.PACK_MV] = PACK_MAX_MV if v > PACK_MAX_MV else (-PACK_MAX_MV if v < -PACK_MAX_MV else v)
        lim = self.bus_raw_max
        v = st.raw_bus
        v = ((lim if v > lim else (-lim if v < -lim else v)) * self.bus_gain) >> 8
        sig[S.BUS_MV] = PACK_MAX_MV if v > PACK_MAX_MV else (-PACK_MAX_MV if v < -PACK_MAX_MV else v)
        # Coolant flow over a sliding window of flow_window_ms: one scan
        # holds only a few meter pulses, too coarse to judge a flow by.
        i = self.flow_i
        old = self.flow_pulses[i]
        span = self.flow_ms_total - self.flow_ms[i] + dt
        pulses = st.raw_tach
        self.flow_pulses[i] = pulses
        self.flow_ms[i] = dt
        self.flow_ms_total = span
        i += 1
        self.flow_i = 0 if i >= self.flow_n_max else i
        if self.flow_n < self.flow_n_max:
            self.flow_n += 1
        elif span > 0:
            sig[S.FLOW_HZ] = (((pulses - old) & 0xFFFF) * 1000) // span
        st.valid_scans += 1
