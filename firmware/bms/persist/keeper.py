# Keeps what must survive a reset: restores the state record at boot (before
# the contactors may close) and, outside the tick, moves new events to the
# log and saves the state record at a bounded rate or at once when the set
# of latched faults changes.
from bms import faults as F
from bms.state import EVENTS


class Keeper:
    def __init__(self, state_store, event_log):
        self.states = state_store
        self.log = event_log
        self.rec = None
        self.latched_seen = bytearray(8)
        self.errors = 0
        self.grid_seen = 0

    def restore(self, app):
        """At boot: latched faults, SOC and capacity from the newest record."""
        from bms.persist.state_record import StateRecord
        rec = None
        try:
            rec = self.states.load()
        except OSError:
            self.errors += 1
        if rec is None:
            rec = StateRecord()
        self.rec = rec
        n = app.restore(rec.latched, rec.soc_cpct, rec.capacity_mah, rec.energy_in_wh, rec.energy_out_wh, rec.grid_wh)
        self.latched_seen[:] = rec.latched
        return n

    def after_tick(self, app, now_ms):
        st = app.state
        try:
            self.log.drain(st)
        except OSError:
            self.errors += 1  # logging never stops the protection
        # latched faults as bits
        lat = self.rec.latched
        changed = False
        for i in range(F.N_FAULTS):
            bit = 1 if (st.fault_active[i] and F.TABLE[i][5]) else 0
            b = i >> 3
            m = 1 << (i & 7)
            old = 1 if lat[b] & m else 0
            if bit != old:
                lat[b] = (lat[b] | m) if bit else (lat[b] & ~m)
                changed = True
        rec = self.rec
        rec.soc_cpct = st.soc_cpct
        rec.capacity_mah = st.capacity_mah
        rec.energy_in_wh = st.energy_in_wh
        rec.energy_out_wh = st.energy_out_wh
        rec.grid_wh = st.grid_wh_total
        # a grid event starting or ending is worth a save of its own
        if st.grid_active != self.grid_seen:
            self.grid_seen = st.grid_active
            changed = True
        if self.states.due(now_ms, changed):
            try:
                self.states.save(rec)
            except OSError:
                self.errors += 1
