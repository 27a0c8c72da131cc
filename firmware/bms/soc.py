# State of charge and capacity (state of health).
#
# Coulomb counting (charge scaled by the coulombic efficiency) between
# synchronisations that anchor it to the cell voltages:
# - end of charge: the highest cell at the top while the current has
#   tapered, for a while -> 100 %;
# - bottom of the usable range: the lowest cell at the discharge cut-off,
#   for a while -> the OCV table's SOC of the IR-corrected voltage (a few %
#   for LFP; "0 % usable"), never below the charge the cold leaves unusable,
#   plus the gap by which the particles' surface (what the voltage reads)
#   runs ahead of their bulk under current: a lag of the C-rate in SOC
#   units, a fast part (electrolyte, charge transfer: seconds) and a slow
#   one (solid diffusion: minutes), fitted to electrochemical-model traces
#   (host_tools/physics_fit.py; the chemistry presets say which);
# - after a long rest, the OCV of the lowest (or highest) cell, averaged
#   over several scans, but only where the OCV curve is steep enough to be
#   read with the sensor noise (LFP's knees, never its plateau).
# Independently of all that, the cells bound the SOC (soc_bounds.py): a
# restored SOC outside that band is not trusted at boot (the SOC starts
# from the cells' guess, unsynchronised), and a count that leaves it while
# running raises SOC_IMPLAUSIBLE and is moved to the band's edge.
# The charge counted between two synchronisations at least
# soc_capacity_min_dsoc_cpct apart re-estimates the capacity.
#
# Integer units: mAh plus an mA*ms remainder (a 2,000 Ah pack holds 7.2e9
# mAs, far past a 31-bit small int), SOC in 0.01 % (cpct), Wh.
from array import array
from micropython import const
from bms import signals as S
from bms import faults as F
from bms.soc_bounds import SocBounds
from bms.state import (EV_SOC_SYNC, EV_CAPACITY, EV_SOC_DISTRUST, SYNC_FULL, SYNC_EMPTY, SYNC_OCV, SYNC_BOOT_OCV,
                       SYNC_CELLS)

COUNT_STEP_MS = const(400)

MAS_PER_MAH = const(3600000)  # mA*ms in one mAh
WMS_PER_WH = const(3600000)  # W*ms in one Wh
AVG_SCANS = const(16)  # scans averaged for an OCV reading
REARM_CPCT = const(500)  # a full / empty sync again only after 5 % of SOC away from it
OCV_MIN_DC = const(100)  # the OCV table holds at 25 degC: use it from 10 ...
OCV_MAX_DC = const(400)  # ... to 40 degC only
IMPLAUSIBLE = F.index("SOC_IMPLAUSIBLE")


def scale_cpct(a, c):
    """a * 10000 // c without leaving 31 bits, for 0 <= a < 1e7, 0 < c < 1e7."""
    t = a * 100
    hi = t // c
    return hi * 100 + (t - hi * c) * 100 // c


def of_cpct(c, cpct):
    """c * cpct // 10000 (exact) for 0 <= c < 2**30, 0 <= cpct <= 10000."""
    return (c // 10000) * cpct + (c % 10000) * cpct // 10000


class Soc:
    def __init__(self, cfg, kernels):
        cap = cfg.capacity_mah
        self.rated = cap
        self.eff = cfg.soc_charge_eff_pm
        self.rest_ma = cap * cfg.soc_rest_cpm // 1000
        self.rest_need = cfg.soc_rest_ms
        self.slope_min = cfg.soc_ocv_slope_mv_per_10pct
        self.full_mv = cfg.soc_full_mv
        self.full_ma = cap * cfg.soc_full_cpm // 1000
        self.full_need = cfg.soc_full_ms
        self.empty_mv = cfg.soc_empty_mv
        self.empty_need = cfg.soc_empty_ms
        self.r_uohm = cfg.soc_cell_r_uohm
        self.min_dsoc = cfg.soc_capacity_min_dsoc_cpct
        self.ocv_x = cfg.ocv_cpct
        self.ocv_y = cfg.ocv_mv
        self.ocv_n = len(cfg.ocv_cpct)
        self.ct_x = cfg.cap_temp_dc
        self.ct_y = cfg.cap_temp_pm
        self.ct_n = len(cfg.cap_temp_dc)
        self.bounds = SocBounds(cfg, kernels)
        self.interp = kernels.interp
        self.lags_k = kernels.soc_lags
        # a restored SOC further than this outside the cells' band is not trusted
        self.trust_cpct = cfg.fault_trip[IMPLAUSIBLE]
        self.moved = 0  # the count was moved into the band since SOC_IMPLAUSIBLE tripped
        self.sums = array("i", [0] * cfg.cells)
        self.n_avg = 0
        self.rest_ms = 0
        self.ocv_done = 0
        self.full_ms = 0
        self.empty_ms = 0
        self.charged = 0  # charge current seen since the last full sync
        self.discharged = 0  # discharge seen since the last empty sync
        self.empty_cpct = -REARM_CPCT  # SOC set by the last empty sync
        self.sync_cpct = -1  # SOC at the last synchronisation
        self.acc_mah = 0  # net charge counted since then (mAh + mA*ms)
        self.acc_rem = 0
        self.e_rem = 0  # W*ms toward the next Wh
        # surface-SOC lag: two first-order lags of the C-rate, in 0.0001 %
        self.lag_k = array("i", [cfg.soc_lag_fast_cpct_per_c, cfg.soc_diffusion_cpct_per_c])
        self.lag_tau = array("i", [cfg.soc_lag_fast_ms, cfg.soc_diffusion_tau_ms])
        self.lag_u = array("i", [0, 0])
        self.lag_rem = array("i", [0, 0])

    # -- OCV table -----------------------------------------------------------
    def soc_at(self, mv):
        return self.bounds.soc_at(mv)

    def slope_at(self, mv):
        """Steepness of the OCV curve at mv, in mV per 10 % SOC."""
        y = self.ocv_y
        n = self.ocv_n
        j = 0
        while j < n - 2 and y[j + 1] < mv:
            j += 1
        return (y[j + 1] - y[j]) * 1000 // (self.ocv_x[j + 1] - self.ocv_x[j])

    def unusable_cpct(self, temp_dc):
        """Share of the capacity the cold leaves unusable, 0.01 %."""
        return 10000 - 10 * self.interp(self.ct_x, self.ct_y, self.ct_n, temp_dc)

    # -- synchronisation -----------------------------------------------------
    def _sync(self, st, soc, kind, now_ms):
        cap = st.capacity_mah
        last = self.sync_cpct
        # A guess from the cells (boot, or a count that contradicted them)
        # is no anchor: no capacity estimate from it, and the SOC counts as
        # unsynchronised (the grid keeps its widest margin).
        if last >= 0 and kind != SYNC_BOOT_OCV and kind != SYNC_CELLS:
            dsoc = soc - last
            net = self.acc_mah
            if dsoc < 0:
                dsoc = -dsoc
                net = -net
            # the counted charge must have moved the way the SOC did
            if dsoc >= self.min_dsoc and net > 0:
                est = scale_cpct(net, dsoc)
                if self.rated // 2 <= est <= self.rated * 6 // 5:
                    # weighted by the span: a full span moves it 3/4 of the
                    # way (the synchronisations themselves are off by ~1 %)
                    w = dsoc * 3 // 400  # percent
                    cap += (est - cap) // 10 * w // 10
                    st.capacity_mah = cap
                    st.capacity_learned = 1
                    st.event(now_ms, EV_CAPACITY, 0, cap)
        if kind == SYNC_CELLS:
            # the charge counted since the last real synchronisation still
            # stands: the next one estimates the capacity across this move
            st.soc_sync_cpct = -1
            st.capacity_learned = 0
        else:
            if kind != SYNC_BOOT_OCV:
                self.sync_cpct = soc
                st.soc_sync_cpct = soc
            self.acc_mah = 0
            self.acc_rem = 0
        st.soc_q_mah = of_cpct(cap, soc)
        st.soc_q_rem = 0
        st.soc_cpct = soc
        st.soc_sync = kind
        st.event(now_ms, EV_SOC_SYNC, kind, soc)

    # -- the tick ------------------------------------------------------------
    def tick(self, st, now_ms):
        if st.valid_scans == 0:
            return
        sig = st.sig
        cap = st.capacity_mah
        if cap <= 0:
            cap = self.rated
            st.capacity_mah = cap
        if st.soc_cpct < 0:
            # Nothing known (first boot): a first guess from the mean cell's
            # voltage, even on a plateau; the first synchronisation fixes it.
            self._sync(st, self.soc_at(sig[S.CELL_SUM_MV] // st.n_cells), SYNC_BOOT_OCV, now_ms)
            return
        if st.soc_q_mah < 0:
            # A restored SOC: count from it, unless the cells say it cannot
            # be (charged or used while the BMS was off, a swapped module,
            # months in storage): then start from what they say.
            b = self.bounds
            b.band(sig, 0)
            soc = st.soc_cpct
            if soc > b.hi + self.trust_cpct or soc < b.lo - self.trust_cpct:
                st.event(now_ms, EV_SOC_DISTRUST, 1 if soc > b.hi else 2, soc)
                self._sync(st, b.point(sig), SYNC_CELLS, now_ms)
                return
            st.soc_q_mah = of_cpct(cap, soc)
            st.soc_q_rem = 0
        cur = sig[S.CURRENT_MA]
        self._count(st, cur, sig[S.PACK_MV])
        sig[S.SOC_LAG_CPCT] = self._lag(cur, cap, st.dt_ms)
        q = st.soc_q_mah
        if q > cap:
            q = cap
            st.soc_q_rem = 0
        elif q < 0:
            q = 0
            st.soc_q_rem = 0
        st.soc_q_mah = q
        st.soc_cpct = scale_cpct(q, cap)
        dt = st.dt_ms
        rest = self.rest_ma
        # A pack held at the top or the bottom by its limits sees small
        # currents both ways: re-arm a synchronisation only once the SOC
        # has really moved away from it.
        # (An SOC that reads full or empty without having been synchronised
        # there may be wrong: that arms at once.)
        soc = st.soc_cpct
        last = st.soc_sync
        if cur > self.full_ma and (soc <= 10000 - REARM_CPCT or last != SYNC_FULL):
            self.charged = 1
        if cur < -rest and (soc >= self.empty_cpct + REARM_CPCT or last != SYNC_EMPTY):
            self.discharged = 1
        if st.fresh:
            self._full_empty(st, sig, cur, dt, now_ms)
        # rest: OCV correction once per rest, after it has settled
        if -rest <= cur <= rest:
            if self.rest_ms < self.rest_need:
                self.rest_ms += dt
            elif not self.ocv_done and st.fresh and not st.bleed_scan:
                self._ocv(st, sig, now_ms)
        else:
            self.rest_ms = 0
            self.n_avg = 0
            self.ocv_done = 0
        if st.fresh and not st.bleed_scan:
            self._check(st, sig, now_ms)
        un = of_cpct(cap, self.unusable_cpct(sig[S.TEMP_MIN_DC]))
        st.usable_mah = st.soc_q_mah - un if st.soc_q_mah > un else 0

    def _check(self, st, sig, now_ms):
        # The count against what the cells allow: how far outside their
        # band it is goes to SOC_IMPLAUSIBLE (debounced there); once that
        # row is active the count moves to the band's edge it crossed.
        b = self.bounds
        b.band(sig, 1 if self.rest_ms >= self.rest_need else 0)
        soc = st.soc_cpct
        dev = soc - b.hi if soc > b.hi else (b.lo - soc if soc < b.lo else 0)
        sig[S.SOC_DEV_CPCT] = dev
        if not st.fault_active[IMPLAUSIBLE]:
            self.moved = 0
        elif dev and not self.moved:
            self.moved = 1  # once per time the row trips
            self._sync(st, b.hi if soc > b.hi else b.lo, SYNC_CELLS, now_ms)
            sig[S.SOC_DEV_CPCT] = 0

    def _count(self, st, cur, pack_mv):
        i = cur * self.eff // 1000 if cur > 0 else cur
        a = cur if cur >= 0 else -cur
        p_w = (pack_mv // 100) * (a // 100) // 100  # 0.1 V x 0.1 A: < 1e8 for 1 kV, 1 kA
        dt = st.dt_ms
        q = st.soc_q_mah
        rem = st.soc_q_rem
        acc = self.acc_mah
        arem = self.acc_rem
        e = self.e_rem
        wh = 0
        # in steps of at most COUNT_STEP_MS, so that every product stays a
        # 31-bit small int at the extremes measure lets through (2**20 mA,
        # 2**21 mV): |i| x 400 < 4.2e8, p_w x 400 < 8.8e8. Integer sums, so
        # the split does not change what is counted.
        while dt > 0:
            s = dt if dt < COUNT_STEP_MS else COUNT_STEP_MS
            dt -= s
            d = i * s
            rem += d
            m = rem // MAS_PER_MAH
            if m:
                q += m
                rem -= m * MAS_PER_MAH
            arem += d
            m = arem // MAS_PER_MAH
            if m:
                acc += m
                arem -= m * MAS_PER_MAH
            e += p_w * s
            while e >= WMS_PER_WH:
                e -= WMS_PER_WH
                wh += 1
        st.soc_q_mah = q
        st.soc_q_rem = rem
        self.acc_mah = acc
        self.acc_rem = arem
        self.e_rem = e
        if wh:
            if cur > 0:
                st.energy_in_wh = (st.energy_in_wh + wh) & 0x3FFFFFFF
            else:
                st.energy_out_wh = (st.energy_out_wh + wh) & 0x3FFFFFFF

    def _lag(self, cur, cap, dt):
        """Advances the two lags by dt (kernels.soc_lags); returns their
        sum (0.01 %, + while charging: the surface is fuller than the
        bulk)."""
        c = cur if cur < 1000000 else 1000000  # +-1 kA keeps cur * 1000 in 31 bits
        c = c if c > -1000000 else -1000000
        c_pm = c * 1000 // cap  # C-rate per mille
        c_pm = c_pm if c_pm < 10000 else 10000
        c_pm = c_pm if c_pm > -10000 else -10000
        return self.lags_k(self.lag_k, self.lag_tau, self.lag_u, self.lag_rem, c_pm, dt) // 100

    def _full_empty(self, st, sig, cur, dt, now_ms):
        # end of charge: at the top, tapered, not discharging
        if self.charged and sig[S.CELL_MAX_MV] >= self.full_mv and -self.rest_ma <= cur <= self.full_ma:
            self.full_ms += dt
            if self.full_ms >= self.full_need:
                self.charged = 0
                self.full_ms = 0
                self._sync(st, 10000, SYNC_FULL, now_ms)
        else:
            self.full_ms = 0
        vmin = sig[S.CELL_MIN_MV]
        if self.discharged and vmin <= self.empty_mv:
            self.empty_ms += dt
            if self.empty_ms >= self.empty_need:
                self.discharged = 0
                self.empty_ms = 0
                dsg = sig[S.DISCHARGE_MA]
                # the voltage reads the surface, which is emptier than the
                # bulk by the lag (negative while discharging)
                soc = self.soc_at(vmin + (dsg // 100) * self.r_uohm // 10000) - sig[S.SOC_LAG_CPCT]
                soc = soc if soc < 10000 else 10000
                cold = self.unusable_cpct(sig[S.TEMP_MIN_DC])
                soc = soc if soc > cold else cold
                self.empty_cpct = soc
                self._sync(st, soc, SYNC_EMPTY, now_ms)
        else:
            self.empty_ms = 0

    def _ocv(self, st, sig, now_ms):
        if sig[S.TEMP_MIN_DC] < OCV_MIN_DC or sig[S.TEMP_MAX_DC] > OCV_MAX_DC:
            return
        n = st.n_cells
        mv = st.cell_mv
        sums = self.sums
        for i in range(n):
            sums[i] += mv[i]
        self.n_avg += 1
        if self.n_avg < AVG_SCANS:
            return
        lo = 1 << 29
        hi = 0
        for i in range(n):
            v = sums[i]
            sums[i] = 0
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        lo //= AVG_SCANS
        hi //= AVG_SCANS
        self.n_avg = 0
        self.ocv_done = 1
        # A series pack is as empty as its lowest cell and as full as its
        # highest: read whichever sits on the steeper part of the curve.
        s_lo = self.slope_at(lo)
        s_hi = self.slope_at(hi)
        if s_lo >= self.slope_min and s_lo >= s_hi:
            self._sync(st, self.soc_at(lo), SYNC_OCV, now_ms)
        elif s_hi >= self.slope_min:
            self._sync(st, self.soc_at(hi), SYNC_OCV, now_ms)
