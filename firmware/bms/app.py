# The application: the state, the stages in pipeline order, and the HAL.
# app.tick(now_ms) is a step function; whoever owns the clock calls it.
from bms.state import State, EV_INTERNAL, EV_BOOT, EV_RESTORED
from bms.measure import Measure
from bms.diagnose import Diagnose
from bms.protect import Protect
from bms.limits import Limits
from bms.balance import Balance
from bms.thermal import Thermal
from bms.contactor import Contactor


class App:
    def __init__(self, cfg, hal, kernels=None):
        if kernels is None:
            from bms import kernels
        self.kernels = kernels
        self.hal = hal
        self.state = State(cfg.cells, cfg.temps)
        self._build(cfg)
        self.errors = 0

    def _build(self, cfg):
        k = self.kernels
        self.cfg = cfg
        self.protect = Protect(cfg, k)
        self.stages = (
            Measure(cfg, k),
            Diagnose(cfg),
            self.protect,
            Limits(cfg),
            Balance(cfg, k),
            Thermal(cfg),
            Contactor(cfg),
        )

    def reconfigure(self, cfg):
        """Applies a new, already validated configuration between ticks:
        every stage is rebuilt from it, so everything derived from a setting
        follows it. The state (faults, latches, contactors, counters) stays.
        A different cell or sensor count needs a reboot."""
        if cfg.cells != self.cfg.cells or cfg.temps != self.cfg.temps:
            raise ValueError("config: cells/temps change needs a reboot (%d/%d -> %d/%d)"
                             % (self.cfg.cells, self.cfg.temps, cfg.cells, cfg.temps))
        self._build(cfg)

    def boot(self, watchdog_reset):
        # Reported at boot, before the contactors may close: WATCHDOG_RESET
        # latches on the first tick and stays until cleared.
        st = self.state
        st.boot_wdt = 1 if watchdog_reset else 0
        st.event(0, EV_BOOT, st.boot_wdt, 0)

    def restore(self, latched_bits, soc_cpct):
        """At boot, from the state record: latched faults come back active
        (so the contactors stay open until they are cleared and their cause
        is gone) and are reported as events. Returns how many."""
        from bms import faults as F
        st = self.state
        n = 0
        for i in range(F.N_FAULTS):
            if F.TABLE[i][5] and latched_bits[i >> 3] & (1 << (i & 7)):
                st.fault_active[i] = 1
                st.event(0, EV_RESTORED, i, 0)
                n += 1
        st.soc_cpct = soc_cpct
        return n

    def tick(self, now_ms):
        st = self.state
        try:
            self.hal.read(st)
            for stage in self.stages:
                stage.tick(st, now_ms)
        except KeyboardInterrupt:
            self.safe(now_ms)
            raise
        except Exception as e:  # noqa: any failure ends in the safe state
            self.safe(now_ms)
            st.internal_error = 1
            self.errors += 1
            st.event(now_ms, EV_INTERNAL, self.errors, 0)
            self.last_error = e
        self.hal.write(st)

    def safe(self, now_ms):
        # Outputs first, then everything else.
        st = self.state
        st.safe_outputs()
        self.hal.safe()
