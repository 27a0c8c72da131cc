# Charge and discharge current limits (CCL/DCL) for the charger, inverter
# and load: tapered near the cell voltage limits, halved under the warnings
# that derate them (over-voltage: charge; under-voltage: discharge),
# derated near full / empty SOC (never to zero there: the voltage taper
# decides the end, so a wrong SOC cannot stop a charge), zero when blocked;
# they fall at once and rise along a ramp.
from bms import signals as S
from bms import faults as F


def _scale(a, b, c):
    # a * b // c exactly, for 0 <= b < c, without the product a * b (up to
    # 1e6 mA x a few thousand: a big int on a 32-bit port)
    return (a // c) * b + (a % c) * b // c


class Limits:
    def __init__(self, cfg):
        self.max_chg = cfg.max_charge_ma
        self.max_dsg = cfg.max_discharge_ma
        self.c0, self.c1 = cfg.ccl_taper_mv
        self.d0, self.d1 = cfg.dcl_taper_mv
        self.ramp = cfg.limit_ramp_ma_per_s
        # Outside the charge temperature window charging stops at once; the
        # UT_CHG / OT_CHG rows debounce only the report.
        self.chg_min_dc = cfg.fault_trip[F.index("UT_CHG")]
        self.chg_max_dc = cfg.fault_trip[F.index("OT_CHG")]
        self.dsg_min_dc = cfg.fault_trip[F.index("UT_DSG")]
        self.dsg_max_dc = cfg.fault_trip[F.index("OT_DSG")]
        # Thermal derating: full current up to OT_WARN, zero at the
        # temperature fault, so the heat made falls to nothing before a
        # cell can reach it.
        self.warm_dc = cfg.fault_trip[F.index("OT_WARN")]
        # While the cooling is faulty, at most this share of the limits.
        self.cooling_pm = cfg.cooling_fault_limit_pm
        self.soc_c0 = cfg.soc_ccl_taper_cpct
        self.soc_d0 = cfg.soc_dcl_taper_cpct
        self.soc_floor = cfg.soc_limit_floor_pm

    def tick(self, st, now_ms):
        sig = st.sig
        vmax = sig[S.CELL_MAX_MV]
        vmin = sig[S.CELL_MIN_MV]
        ccl = self.max_chg
        if vmax >= self.c1:
            ccl = 0
        elif vmax > self.c0:
            ccl = _scale(ccl, self.c1 - vmax, self.c1 - self.c0)
        dcl = self.max_dsg
        if vmin <= self.d1:
            dcl = 0
        elif vmin < self.d0:
            dcl = _scale(dcl, vmin - self.d1, self.d0 - self.d1)
        if st.derate_chg:
            ccl >>= 1
        if st.derate_dsg:
            dcl >>= 1
        soc = st.soc_cpct
        if soc >= 0:
            fl = self.soc_floor
            if soc > self.soc_c0:
                ccl = ccl * (1000 - (1000 - fl) * (soc - self.soc_c0) // (10000 - self.soc_c0)) // 1000
            if soc < self.soc_d0:
                dcl = dcl * (fl + (1000 - fl) * soc // self.soc_d0) // 1000
        tmax = sig[S.TEMP_MAX_DC]
        if tmax > self.warm_dc:
            span = self.chg_max_dc - self.warm_dc
            ccl = 0 if tmax >= self.chg_max_dc else _scale(ccl, self.chg_max_dc - tmax, span)
            span = self.dsg_max_dc - self.warm_dc
            dcl = 0 if tmax >= self.dsg_max_dc else _scale(dcl, self.dsg_max_dc - tmax, span)
        if st.cooling_fault:
            ccl = ccl * self.cooling_pm // 1000
            dcl = dcl * self.cooling_pm // 1000
        tmin = sig[S.TEMP_MIN_DC]
        if st.block_chg or st.valid_scans == 0 or tmin <= self.chg_min_dc or tmax >= self.chg_max_dc:
            ccl = 0
        if st.block_dsg or st.valid_scans == 0 or tmin <= self.dsg_min_dc or tmax >= self.dsg_max_dc:
            dcl = 0
        # ramp x dt in two parts: up to 1e6 mA/s x a 10 s step would not fit 31 bits
        dt = st.dt_ms
        step = (self.ramp // 1000) * dt + (self.ramp % 1000) * dt // 1000
        if ccl > st.ccl_ma + step:
            ccl = st.ccl_ma + step
        if dcl > st.dcl_ma + step:
            dcl = st.dcl_ma + step
        st.ccl_ma = ccl
        st.dcl_ma = dcl
