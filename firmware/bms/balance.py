# Passive balancing: bleed the cells that stand above the lowest cell, while
# charging or at rest, above a voltage floor and below a temperature limit.
# With balance_window_ms > 0 the bleeding pauses for a measurement window
# every balance_bleed_ms: where the bleed current flows through the sense
# wires it would distort the readings, so the measure stage keeps the cell
# voltages of the last scan taken with the bleeding paused (State.bleed_scan
# says which scans are distorted) and the selection is always made on
# undistorted readings. With 0 the front end pauses it for its conversions.
from bms import signals as S


class Balance:
    def __init__(self, cfg, kernels):
        self.k = kernels
        self.start = cfg.balance_start_mv
        self.stop = cfg.balance_stop_mv
        self.floor = cfg.balance_floor_mv
        self.max_cells = cfg.balance_max_cells
        self.nn = 1 if cfg.balance_no_neighbours else 0
        self.max_temp = cfg.balance_max_temp_dc
        self.rest_ma = cfg.balance_rest_ma
        self.bleed_ms = cfg.balance_bleed_ms
        self.window_ms = cfg.balance_window_ms
        self.bled_ms = 0
        self.win_left = 0
        self.running = 0

    def _off(self, st):
        if st.balance_count:
            mask = st.balance_mask
            for i in range(st.n_cells):
                mask[i] = 0
            st.balance_count = 0

    def tick(self, st, now_ms):
        sig = st.sig
        cur = sig[S.CURRENT_MA]
        # Only on a fresh scan: a silent front end gives no basis to bleed;
        # nor does a pack without one readable thermistor (the min/max then
        # hold the last good reading, which says nothing of the bleed's heat).
        allowed = (st.fresh and st.valid_scans > 0 and not st.open_req
                   and sig[S.BAD_THERM] < st.n_temps and sig[S.TEMP_MAX_DC] < self.max_temp
                   and cur > -self.rest_ma)
        if not allowed:
            self._off(st)
            self.running = 0
            self.bled_ms = 0
            self.win_left = 0
            st.bleed_scan = 0
            return
        if self.win_left > 0:
            # measurement window: the next scans see the cells undisturbed
            self.win_left -= st.dt_ms
            self._off(st)
            st.bleed_scan = 0
            return
        p = st.balance_params
        p[0] = sig[S.CELL_MIN_MV]
        # Hysteresis: a running balance goes on down to the stop threshold.
        p[1] = self.stop if self.running else self.start
        p[2] = self.floor
        p[3] = self.max_cells
        p[4] = self.nn
        n = self.k.balance_select(st.cell_mv, st.n_cells, p, st.balance_mask)
        st.balance_count = n
        self.running = 1 if n else 0
        if n and self.window_ms:
            self.bled_ms += st.dt_ms
            if self.bled_ms >= self.bleed_ms:
                self.bled_ms = 0
                self.win_left = self.window_ms
                self._off(st)
                n = 0
        st.bleed_scan = 1 if n and self.window_ms else 0
