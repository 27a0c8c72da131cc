# Passive balancing: bleed the cells that stand above the lowest cell, while
# charging or at rest, above a voltage floor and below a temperature limit.
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

    def tick(self, st, now_ms):
        sig = st.sig
        cur = sig[S.CURRENT_MA]
        # Only on a fresh scan: a silent front end gives no basis to bleed.
        allowed = (st.fresh and st.valid_scans > 0 and not st.open_req
                   and sig[S.TEMP_MAX_DC] < self.max_temp
                   and cur > -self.rest_ma)
        mask = st.balance_mask
        if not allowed:
            if st.balance_count:
                for i in range(st.n_cells):
                    mask[i] = 0
                st.balance_count = 0
            return
        p = st.balance_params
        p[0] = sig[S.CELL_MIN_MV]
        # Hysteresis: a running balance goes on down to the stop threshold.
        p[1] = self.stop if st.balance_count else self.start
        p[2] = self.floor
        p[3] = self.max_cells
        p[4] = self.nn
        st.balance_count = self.k.balance_select(st.cell_mv, st.n_cells, p, mask)
