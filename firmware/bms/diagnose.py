# Plausibility checks across measurements and outputs, as signals for the
# fault table: cell spread where it means something, cell sum against the
# pack voltage sensor, coolant flow against the pump duty, contactor
# feedback against the command, and the flags of the rest of the system.
from micropython import const
from bms import signals as S
from bms.state import OUT_NEG, OUT_POS

LOCKED = const(4)  # contactor.LOCKED (not imported: contactor imports state)


class Diagnose:
    def __init__(self, cfg):
        self.win_lo, self.win_hi = cfg.imbalance_window_mv
        self.imb_max_ma = cfg.capacity_mah * cfg.imbalance_max_cpm // 1000
        self.flow_full = cfg.flow_hz_full
        # Flow is judged once the pump has run its spin-up time and then a
        # whole flow window (measure.py), so that the window holds only
        # pulses of a pump that has reached its flow.
        self.spinup = cfg.flow_spinup_ms + cfg.flow_window_ms
        self.min_duty = cfg.pump_min_duty_pm
        self.run_ms = 0
        self.open_cmd_ms = 0

    def tick(self, st, now_ms):
        sig = st.sig
        dt = st.dt_ms
        if st.fresh:
            vmax = sig[S.CELL_MAX_MV]
            vmin = sig[S.CELL_MIN_MV]
            cur = sig[S.CURRENT_MA]
            if vmin > self.win_lo and vmax < self.win_hi and -self.imb_max_ma <= cur <= self.imb_max_ma:
                sig[S.SPREAD_PLATEAU_MV] = vmax - vmin
            else:
                sig[S.SPREAD_PLATEAU_MV] = 0
            d = sig[S.CELL_SUM_MV] - sig[S.PACK_MV]
            sig[S.SUM_MISMATCH_MV] = d if d >= 0 else -d
            # Flow is judged on the duty commanded last tick, once the pump
            # has had time to spin up.
            duty = st.pump_duty_pm
            if duty >= self.min_duty:
                if self.run_ms < self.spinup:
                    self.run_ms += dt
            else:
                self.run_ms = 0
            if duty >= self.min_duty and self.run_ms >= self.spinup:
                expect = self.flow_full * duty // 1000
                got = sig[S.FLOW_HZ]
                deficit = 1000 - (got * 1000 // expect if expect > 0 else 1000)
                sig[S.FLOW_DEFICIT_PM] = 0 if deficit < 0 else (1000 if deficit > 1000 else deficit)
            else:
                sig[S.FLOW_DEFICIT_PM] = 0
            if duty >= self.min_duty and self.run_ms >= self.spinup and not sig[S.BAD_COOL]:
                sig[S.COOLANT_DT_DC] = sig[S.COOLANT_OUT_DC] - sig[S.COOLANT_IN_DC]
            else:
                sig[S.COOLANT_DT_DC] = 0
        # Feedback of a contactor commanded open (last tick's outputs) that
        # still reads closed.
        out = st.outputs
        fb = st.inputs
        welded = 0
        if (not out & OUT_NEG and fb & OUT_NEG) or (not out & OUT_POS and fb & OUT_POS):
            welded = 1
        sig[S.WELDED] = welded
        sig[S.PRECHARGE_LOCKED] = 1 if st.contactor_state == LOCKED else 0
        sig[S.INTERNAL] = st.internal_error
        sig[S.WDT_BOOT] = st.boot_wdt
