# Charge and discharge current limits (CCL/DCL) for the charger, inverter
# and load: tapered near the cell voltage limits, halved under the warnings
# that derate them (over-voltage: charge; under-voltage: discharge),
# zero when blocked; they fall at once and rise along a ramp.
from bms import signals as S


class Limits:
    def __init__(self, cfg):
        self.max_chg = cfg.max_charge_ma
        self.max_dsg = cfg.max_discharge_ma
        self.c0, self.c1 = cfg.ccl_taper_mv
        self.d0, self.d1 = cfg.dcl_taper_mv
        self.ramp = cfg.limit_ramp_ma_per_s

    def tick(self, st, now_ms):
        sig = st.sig
        vmax = sig[S.CELL_MAX_MV]
        vmin = sig[S.CELL_MIN_MV]
        ccl = self.max_chg
        if vmax >= self.c1:
            ccl = 0
        elif vmax > self.c0:
            ccl = ccl * (self.c1 - vmax) // (self.c1 - self.c0)
        dcl = self.max_dsg
        if vmin <= self.d1:
            dcl = 0
        elif vmin < self.d0:
            dcl = dcl * (vmin - self.d1) // (self.d0 - self.d1)
        if st.derate_chg:
            ccl >>= 1
        if st.derate_dsg:
            dcl >>= 1
        if st.block_chg or st.valid_scans == 0:
            ccl = 0
        if st.block_dsg or st.valid_scans == 0:
            dcl = 0
        step = self.ramp * st.dt_ms // 1000
        if ccl > st.ccl_ma + step:
            ccl = st.ccl_ma + step
        if dcl > st.dcl_ma + step:
            dcl = st.dcl_ma + step
        st.ccl_ma = ccl
        st.dcl_ma = dcl
