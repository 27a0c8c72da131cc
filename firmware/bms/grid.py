# Grid-support events: on short notice, discharge to the grid at P watts
# for T seconds, within the discharge limit and never below the owner's
# reserve SOC. The counted SOC may be off by a share of what it has counted
# since its last synchronisation (capacity error): the event keeps that
# margin above the reserve (State.grid_floor_cpct), so the true SOC stays
# above it. The event ends at the deadline, at that floor, when it is
# cancelled, or when discharging is no longer allowed (contactors open,
# discharge blocked). The inverter is asked for an export current each tick
# (State.grid_ma, in the actuator frame / telemetry); the energy exported is
# counted per event (mWh) and in total (Wh, kept in the state record).
#
# The counted SOC can be wrong (charged or used while the BMS was off, a
# saved SOC or capacity that no longer fits the pack, a current-sensor
# offset), so the reserve has a second floor that does not come from it:
# the lowest cell, corrected for the present current with the cell
# resistance, against the OCV of the reserve from the chemistry's table
# plus what hysteresis, the front end's accuracy and the temperature may
# add (soc_bounds.py). Discharging, the corrected voltage lies below the
# cell's OCV, so a cell above that floor is above the reserve. An event
# ends, and a new one is refused, at whichever floor comes first.
from bms import ticks
from micropython import const
from bms import signals as S
from bms.state import (EV_GRID_START, EV_GRID_END, EV_GRID_REJECT, GRID_DEADLINE, GRID_RESERVE,
                       GRID_CANCELLED, GRID_BLOCKED, GRID_BAD_ARGS, GRID_BUSY, GRID_SOC_UNKNOWN,
                       GRID_VOLTAGE)
from bms.soc_bounds import SocBounds

CLOSED = const(3)  # contactor.CLOSED
WMS_PER_MWH = const(3600)  # W*ms in one mWh
MWH_PER_WH = const(1000)


class Grid:
    def __init__(self, cfg, kernels):
        self.reserve = cfg.grid_reserve_cpct
        self.max_w = cfg.grid_max_power_w
        self.max_s = cfg.grid_max_duration_s
        self.margin_pm = cfg.grid_margin_pm
        self.margin_unlearned_pm = cfg.grid_margin_unlearned_pm
        self.margin_sync = cfg.grid_margin_sync_cpct
        self.margin_unsynced = cfg.grid_margin_unsynced_cpct
        self.bounds = SocBounds(cfg, kernels)
        self.reserve_mv = self.bounds.mv_at(self.reserve)
        self.vfloor_need = cfg.grid_vfloor_ms
        self.vfloor_rearm = cfg.grid_vfloor_rearm_mv
        self.vlow_ms = 0
        self.e_rem = 0  # W*ms toward the next mWh
        self.mwh_rem = 0  # mWh toward the next Wh of the total

    def floor(self, st):
        """The SOC at which an event must end: the reserve plus a margin
        for what the SOC may have drifted since its last synchronisation."""
        base = st.soc_sync_cpct
        if base < 0:
            m = self.margin_unsynced
        else:
            span = st.soc_cpct - base
            m = self.margin_sync + (span if span >= 0 else -span) * (
                self.margin_pm if st.capacity_learned else self.margin_unlearned_pm) // 1000
        f = self.reserve + m
        st.grid_floor_cpct = f
        return f

    def _voltage(self, st):
        # The cell-voltage floor, judged on fresh, undistorted scans; a
        # low reading must last grid_vfloor_ms (a load step, noise).
        sig = st.sig
        f = self.bounds.floor_mv(self.reserve_mv, sig)
        st.grid_vfloor_mv = f
        if not st.fresh or st.bleed_scan or st.valid_scans == 0:
            return
        # It re-arms once the cell has been back above the floor plus
        # grid_vfloor_rearm_mv for as long while charging (recharged, not
        # just relaxed: after a discharge the surface SOC, which the
        # voltage reads, recovers toward the bulk for minutes at rest).
        v = self.bounds.vmin_corrected(sig)
        need = self.vfloor_need
        if st.grid_vlow:
            up = v >= f + self.vfloor_rearm and sig[S.CURRENT_MA] > self.bounds.rest_ma
            self.vlow_ms = self.vlow_ms + st.dt_ms if up else 0
            if self.vlow_ms >= need:
                st.grid_vlow = 0
                self.vlow_ms = 0
        else:
            self.vlow_ms = self.vlow_ms + st.dt_ms if v <= f else 0
            if self.vlow_ms >= need:
                st.grid_vlow = 1
                self.vlow_ms = 0

    def refusal(self, st, power_w, duration_s):
        """0 when an event may start now, else its GRID_* refusal reason
        (allocates nothing: the tick's command path uses it)."""
        if type(power_w) is not int or not 0 < power_w <= self.max_w:
            return GRID_BAD_ARGS
        if type(duration_s) is not int or not 0 < duration_s <= self.max_s:
            return GRID_BAD_ARGS
        if st.grid_active:
            return GRID_BUSY
        if st.soc_cpct < 0:
            return GRID_SOC_UNKNOWN
        if st.soc_cpct <= self.floor(st):
            return GRID_RESERVE
        if st.grid_vlow or self.bounds.vmin_corrected(st.sig) <= self.bounds.floor_mv(self.reserve_mv, st.sig):
            return GRID_VOLTAGE
        if st.contactor_state != CLOSED or st.block_dsg or st.open_req:
            return GRID_BLOCKED
        return 0

    def _why(self, reason, st, power_w, duration_s):
        # the console's words for a refusal (built only there, between ticks)
        if reason == GRID_BAD_ARGS:
            if type(power_w) is not int or not 0 < power_w <= self.max_w:
                return "power %r W out of range 1..%d W (grid_max_power_w)" % (power_w, self.max_w)
            return "duration %r s out of range 1..%d s (grid_max_duration_s)" % (duration_s, self.max_s)
        if reason == GRID_BUSY:
            return "an event is already running (cancel it first)"
        if reason == GRID_SOC_UNKNOWN:
            return "state of charge not known yet"
        if reason == GRID_RESERVE:
            f = self.floor(st)
            return ("SOC %d.%02d %% is at or below the reserve %d.%02d %% plus its margin (%d.%02d %%)"
                    % (st.soc_cpct // 100, st.soc_cpct % 100, self.reserve // 100, self.reserve % 100, f // 100, f % 100))
        if reason == GRID_VOLTAGE:
            return ("the lowest cell (%d mV, IR-corrected) is at or below the reserve's OCV with its allowances (%d mV)"
                    % (self.bounds.vmin_corrected(st.sig), self.bounds.floor_mv(self.reserve_mv, st.sig)))
        return "discharging is not allowed now (contactors open or discharge blocked)"

    def start(self, st, now_ms, power_w, duration_s):
        """Starts an event; raises ValueError with the reason (and changes
        nothing but the refusal reason and an event) when the arguments
        are bad or an event is not allowed now."""
        reason = self.begin(st, now_ms, power_w, duration_s)
        if reason:
            raise ValueError("grid_start: " + self._why(reason, st, power_w, duration_s))

    def begin(self, st, now_ms, power_w, duration_s):
        """start() without the words: returns 0 when the event started,
        else the refusal reason (recorded as an event)."""
        reason = self.refusal(st, power_w, duration_s)
        if reason:
            st.grid_reason = reason
            st.event(now_ms, EV_GRID_REJECT, reason, power_w if type(power_w) is int else 0)
            return reason
        st.grid_active = 1
        st.grid_power_w = power_w
        st.grid_end_ms = ticks.add(now_ms, duration_s * 1000)
        st.grid_mwh_event = 0
        st.grid_reason = 0
        st.grid_events += 1
        self.e_rem = 0
        st.event(now_ms, EV_GRID_START, duration_s, power_w)
        return 0

    def cancel(self, st, now_ms):
        """Ends a running event; False when none was running."""
        if not st.grid_active:
            return False
        self._end(st, now_ms, GRID_CANCELLED)
        return True

    def _end(self, st, now_ms, reason):
        st.grid_active = 0
        st.grid_ma = 0
        st.grid_reason = reason
        st.event(now_ms, EV_GRID_END, reason, st.grid_mwh_event)

    def tick(self, st, now_ms):
        self._voltage(st)
        if not st.grid_active:
            st.grid_ma = 0
            return
        sig = st.sig
        # Energy of the last tick: the export asked of the inverter, as far
        # as the pack really delivered it (the home load shares the current).
        dsg = sig[S.DISCHARGE_MA]
        ex = st.grid_ma if st.grid_ma < dsg else dsg
        dt = st.dt_ms if st.dt_ms < 1000 else 1000
        pack_mv = sig[S.PACK_MV]
        p_w = (pack_mv // 100) * (ex // 100) // 100  # 0.1 V x 0.1 A
        e = self.e_rem + p_w * dt  # <= 1e8 W x 1000 ms... bounded by grid_max_power_w
        m = e // WMS_PER_MWH
        self.e_rem = e - m * WMS_PER_MWH
        if m:
            st.grid_mwh_event += m
            r = self.mwh_rem + m
            w = r // MWH_PER_WH
            self.mwh_rem = r - w * MWH_PER_WH
            st.grid_wh_total = (st.grid_wh_total + w) & 0x3FFFFFFF
        if ticks.diff(now_ms, st.grid_end_ms) >= 0:
            self._end(st, now_ms, GRID_DEADLINE)
            return
        if st.soc_cpct <= self.floor(st):
            self._end(st, now_ms, GRID_RESERVE)
            return
        if st.grid_vlow:
            self._end(st, now_ms, GRID_VOLTAGE)
            return
        if st.contactor_state != CLOSED or st.block_dsg or st.open_req:
            self._end(st, now_ms, GRID_BLOCKED)
            return
        # P / V as mA: W x 1e4 / (0.1 V); power_w <= 1e5 keeps it in 31 bits
        dv = pack_mv // 100
        ma = st.grid_power_w * 10000 // dv if dv > 0 else 0
        st.grid_ma = ma if ma < st.dcl_ma else st.dcl_ma
