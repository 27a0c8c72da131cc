# Evaluates the fault table against the signals: trip and recovery
# debounce in ms, hysteresis, latching, and the actions of what is active.
from bms import faults as F
from bms.state import EV_FAULT_SET, EV_FAULT_CLEAR


class Protect:
    def __init__(self, cfg, kernels):
        from array import array
        nf = F.N_FAULTS
        self.n = nf
        self.k = kernels
        self.latch = bytearray([1 if row[5] else 0 for row in F.TABLE])
        self.sig_idx = bytearray([row[1] for row in F.TABLE])
        # the fault table packed for the kernel (kernels.fault_rows)
        rows = array("i", [0] * (11 * nf))
        for i in range(nf):
            row = F.TABLE[i]
            b = 11 * i
            leaky = row[0] in F.LEAKY
            rows[b] = row[1]
            rows[b + 1] = row[2]
            rows[b + 2] = cfg.fault_trip[i]
            rows[b + 3] = cfg.fault_rec[i]
            rows[b + 4] = cfg.fault_trip_ms[i] * 1000 if leaky else cfg.fault_trip_ms[i]
            rows[b + 5] = cfg.fault_rec_ms[i]
            rows[b + 6] = 1 if row[5] else 0
            rows[b + 7] = row[7]
            rows[b + 8] = 1 if row[3] == F.WARNING else 0
            rows[b + 9] = row[4]
            rows[b + 10] = F.LEAK_PM if leaky else 0
        self.rows = rows
        self.io = array("i", [nf, 0, 0, 0, 0, 0])
        self.changed = bytearray(nf)

    def tick(self, st, now_ms):
        # Faults on measurements are judged only on a fresh, complete scan:
        # before the first one and while the front end is silent their
        # debounce holds (STALE_MEASUREMENT covers the silence).
        if st.clear_req:
            st.clear_req = 0
            self.clear(st, now_ms)
        io = self.io
        io[1] = st.dt_ms
        io[2] = 1 if st.fresh and st.valid_scans > 0 else 0
        sig = st.sig
        if self.k.fault_rows(sig, self.rows, st.fault_acc_ms, st.fault_active, st.fault_cause_gone, self.changed, io):
            ch = self.changed
            for i in range(self.n):
                c = ch[i]
                if c:
                    st.event(now_ms, EV_FAULT_SET if c == 1 else EV_FAULT_CLEAR, i, sig[self.sig_idx[i]])
        acts = io[3]
        if st.internal_error:
            acts |= F.BLOCK_CHG | F.BLOCK_DSG | F.OPEN
        st.n_active = io[4]
        st.warnings = io[5]
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
                st.fault_acc_ms[i] = 0
                st.event(now_ms, EV_FAULT_CLEAR, i, 0)
                n += 1
        return n
