# Contactor sequencing: open -> precharge -> closed, and open at once on a
# critical fault. Never closes before one complete, valid measurement scan.
from bms import ticks
from micropython import const
from bms import signals as S
from bms.state import OUT_NEG, OUT_PRE, OUT_POS, IN_ENABLE, EV_CONTACTOR

OPEN = const(0)
PRECHARGE = const(1)
CLOSING = const(2)  # main contactor closed, precharge still on for one tick
CLOSED = const(3)
LOCKED = const(4)  # precharge failed on every try: stays open until reboot
NAMES = ("open", "precharge", "closing", "closed", "locked")


class Contactor:
    def __init__(self, cfg):
        self.margin = cfg.precharge_margin_mv
        self.timeout = cfg.precharge_timeout_ms
        self.tries_max = cfg.precharge_tries
        self.retry_ms = cfg.precharge_retry_ms
        self.auto_close = cfg.auto_close
        self.since = 0
        self.tries = 0
        self.request = cfg.auto_close
        self.need_enable = cfg.enable_input
        # Boot: until the first close, wait close_hold_ms after the first
        # valid scan (summed from the measure stage's dt, which copes with
        # the clock's wrap) and while any fault row is still debouncing, so
        # every fault present at power-up is reported before anything closes.
        self.hold_left_ms = cfg.close_hold_ms
        self.seen_scan = False
        self.booting = True

    def _go(self, st, state, now_ms):
        st.contactor_state = state
        self.since = now_ms
        st.event(now_ms, EV_CONTACTOR, state, 0)

    def _boot_hold(self, st):
        if self.hold_left_ms > 0:
            return True
        acc = st.fault_acc_ms
        act = st.fault_active
        for i in range(len(act)):
            if acc[i] and not act[i]:
                return True  # a trip is pending: let it finish first
        return False

    def tick(self, st, now_ms):
        s = st.contactor_state
        enabled = self.request and (st.inputs & IN_ENABLE or not self.need_enable)
        if st.open_req or not enabled:
            if s != OPEN and s != LOCKED:
                self._go(st, OPEN, now_ms)
                self.tries = 0
            st.outputs = 0
            return
        elapsed = ticks.diff(now_ms, self.since)
        if self.hold_left_ms > 0 and st.valid_scans > 0:
            if self.seen_scan:
                self.hold_left_ms -= st.dt_ms
            self.seen_scan = True
        if s == OPEN:
            if st.valid_scans > 0 and (self.tries == 0 or elapsed >= self.retry_ms) and not (self.booting and self._boot_hold(st)):
                self.tries += 1
                self._go(st, PRECHARGE, now_ms)
        elif s == PRECHARGE:
            sig = st.sig
            diff = sig[S.PACK_MV] - sig[S.BUS_MV]
            if diff < 0:
                diff = -diff
            if diff <= self.margin:
                self._go(st, CLOSING, now_ms)
            elif elapsed >= self.timeout:
                self._go(st, LOCKED if self.tries >= self.tries_max else OPEN, now_ms)
        elif s == CLOSING:
            self._go(st, CLOSED, now_ms)
            self.tries = 0
            self.booting = False
        s = st.contactor_state
        if s == PRECHARGE:
            st.outputs = OUT_NEG | OUT_PRE
        elif s == CLOSING:
            st.outputs = OUT_NEG | OUT_PRE | OUT_POS
        elif s == CLOSED:
            st.outputs = OUT_NEG | OUT_POS
        else:
            st.outputs = 0
