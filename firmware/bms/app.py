# The application: the state, the stages in pipeline order, and the HAL.
# app.tick(now_ms) is a step function; whoever owns the clock calls it.
from bms.state import State, EV_INTERNAL, EV_BOOT, EV_RESTORED, CMD_GRID_START, CMD_GRID_CANCEL
from bms.measure import Measure
from bms.diagnose import Diagnose
from bms.protect import Protect
from bms.soc import Soc
from bms.limits import Limits
from bms.balance import Balance
from bms.thermal import Thermal
from bms.grid import Grid
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
        # Every stage is built before any is swapped in: a failure part-way
        # (a MemoryError on a small heap during `config set`) leaves the
        # running pipeline as it was, not half old and half new.
        k = self.kernels
        protect = Protect(cfg, k)
        grid = Grid(cfg, k)
        stages = (
            Measure(cfg, k),
            Diagnose(cfg),
            protect,
            Soc(cfg, k),
            Limits(cfg),
            Balance(cfg, k),
            Thermal(cfg),
            grid,
            Contactor(cfg),
        )
        self.cfg = cfg
        self.protect = protect
        self.grid = grid
        self.stages = stages

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

    def restore(self, latched_bits, soc_cpct, capacity_mah=0, energy_in_wh=0, energy_out_wh=0, grid_wh=0):
        """At boot, from the state record: latched faults come back active
        (so the contactors stay open until they are cleared and their cause
        is gone) and are reported as events; SOC, capacity estimate and
        energy counters carry on from their saved values. Returns how many
        faults were restored."""
        from bms import faults as F
        st = self.state
        n = 0
        for i in range(F.N_FAULTS):
            if F.TABLE[i][5] and latched_bits[i >> 3] & (1 << (i & 7)):
                st.fault_active[i] = 1
                st.event(0, EV_RESTORED, i, 0)
                n += 1
        # a value outside its range is not trusted: the SOC stage starts over
        st.soc_cpct = soc_cpct if 0 <= soc_cpct <= 10000 else -1
        st.soc_q_mah = -1
        cap = self.cfg.capacity_mah
        st.capacity_mah = capacity_mah if cap // 2 <= capacity_mah <= cap * 6 // 5 else 0
        st.capacity_learned = 1 if st.capacity_mah else 0
        st.energy_in_wh = energy_in_wh if energy_in_wh > 0 else 0
        st.energy_out_wh = energy_out_wh if energy_out_wh > 0 else 0
        st.grid_wh_total = grid_wh if grid_wh > 0 else 0
        return n

    def grid_start(self, now_ms, power_w, duration_s):
        """Grid-support event: export power_w watts for duration_s seconds,
        within the discharge limit, never below config grid_reserve_cpct.
        Raises ValueError with the reason when the arguments are bad or an
        event is not allowed now (then nothing but st.grid_reason changes)."""
        self.grid.start(self.state, now_ms, power_w, duration_s)

    def grid_cancel(self, now_ms):
        """Ends a running grid event; False when none was running."""
        return self.grid.cancel(self.state, now_ms)

    def _command(self, st, now_ms):
        # A host command (sim frame) in the tick: a refused one is in the
        # event record, and no words are built for it (nothing allocates).
        cmd = st.cmd
        st.cmd = 0
        if cmd == CMD_GRID_START:
            self.grid.begin(st, now_ms, st.cmd_a, st.cmd_b)
        elif cmd == CMD_GRID_CANCEL:
            self.grid.cancel(st, now_ms)

    def tick(self, now_ms):
        st = self.state
        try:
            self.hal.read(st)
            if st.cmd:
                self._command(st, now_ms)
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
