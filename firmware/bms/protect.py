# Evaluates the fault table against the signals: trip and recovery
# debounce in ms, hysteresis, latching, and the actions of what is active.
from bms import faults as F
from bms.state import EV_FAULT_SET, EV_FAULT_CLEAR


class Protect:
    def __init__(self, cfg):
        nf = F.N_FAULTS
        self.n = nf
        self.sig_idx = bytearray([row[1] for row in F.TABLE])
        self.above = bytearray([row[2] for row in F.TABLE])
        self.sev = bytearray([row[3] for row in F.TABLE])
        self.act = bytearray([row[4] for row in F.TABLE])
        self.latch = bytearray([1 if row[5] else 0 for row in F.TABLE])
        self.measured = bytearray([row[7] for row in F.TABLE])
        self.trip = cfg.fault_trip
        self.trip_ms = cfg.fault_trip_ms
        self.rec = cfg.fault_rec
        self.rec_ms = cfg.fault_rec_ms

    def tick(self, st, now_ms):
        # Faults on measurements are judged only on a fresh, complete scan:
        # before the first one and while the front end is silent their
        # debounce holds (STALE_MEASUREMENT covers the silence).
        judge = st.fresh and st.valid_scans > 0
        if st.clear_req:
            st.clear_req = 0
            self.clear(st, now_ms)
        sig = st.sig
        active = st.fault_active
        gone = st.fault_cause_gone
        acc = st.fault_acc_ms
        dt = st.dt_ms
        above = self.above
        trip = self.trip
        rec = self.rec
        warn = count = acts = 0
        measured = self.measured
        for i in range(self.n):
            v = sig[self.sig_idx[i]]
            if measured[i] and not judge:
                pass
            elif not active[i]:
                hit = v >= trip[i] if above[i] else v <= trip[i]
                if hit:
                    a = 0 if acc[i] < 0 else acc[i] + dt
                    if a >= self.trip_ms[i]:
                        active[i] = 1
                        gone[i] = 0
                        a = -1
                        st.event(now_ms, EV_FAULT_SET, i, v)
                    acc[i] = a
                else:
                    acc[i] = -1
            else:
                ok = v < rec[i] if above[i] else v > rec[i]
                if ok:
                    a = 0 if acc[i] < 0 else acc[i] + dt
                    if a >= self.rec_ms[i]:
                        a = self.rec_ms[i]
                        if self.latch[i]:
                            gone[i] = 1  # stays active until `clear`
                        else:
                            active[i] = 0
                            a = -1
                            st.event(now_ms, EV_FAULT_CLEAR, i, v)
                    acc[i] = a
                else:
                    acc[i] = -1
                    gone[i] = 0
            if active[i]:
                count += 1
                if self.sev[i] == F.WARNING:
                    warn += 1
                acts |= self.act[i]
        if st.internal_error:
            acts |= F.BLOCK_CHG | F.BLOCK_DSG | F.OPEN
        st.n_active = count
        st.warnings = warn
        st.derate_chg = 1 if acts & F.DERATE_CHG else 0
        st.derate_dsg = 1 if acts & F.DERATE_DSG else 0
        st.cooling_fault = 1 if acts & F.COOLING else 0
        st.block_chg = 1 if acts & F.BLOCK_CHG else 0
        st.block_dsg = 1 if acts & F.BLOCK_DSG else 0
        st.open_req = 1 if acts & F.OPEN else 0

    def clear(self, st, now_ms):
        # Clears latched faults whose cause is gone; returns how many.
        n = 0
        for i in range(self.n):
            if st.fault_active[i] and self.latch[i] and st.fault_cause_gone[i]:
                st.fault_active[i] = 0
                st.fault_cause_gone[i] = 0
                st.fault_acc_ms[i] = -1
                st.event(now_ms, EV_FAULT_CLEAR, i, 0)
                n += 1
        return n
