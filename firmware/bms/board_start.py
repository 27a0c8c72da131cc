# Start-up on a real board (board.json "hal": "board"), called by
# bms.boot.board_main once board.json and the stored configuration are
# read and valid: build the HAL from the board configuration, report how
# the board was reset (a watchdog reset raises WATCHDOG_RESET before
# anything may close), restore the persisted state, then run the
# fixed-period board loop with the hardware watchdog; the persistence step
# and the console are served between ticks. `machine`, the clock and the
# console port can be handed in (tests run this on the chip models under
# the unix port).
import gc


class _WithKeeper:
    """The app as the board runner sees it, with the persistence step (state
    record, event log to flash) right after each tick; the runner serves
    the console after that."""

    def __init__(self, app, keeper):
        self.app = app
        self.keeper = keeper
        self.state = app.state
        self.hal = app.hal

    def tick(self, now_ms):
        self.app.tick(now_ms)
        self.keeper.after_tick(self.app, now_ms)

    def safe(self, now_ms):
        self.app.safe(now_ms)


def run(board, cfg, raw, store, source, root, machine=None, clock=None, port=None, max_ticks=-1):
    """Returns the BoardRunner after max_ticks (never, with -1: an escape
    ends in the safe state and machine.reset())."""
    if machine is None:
        import machine
    if clock is None:
        import time as clock
    from bms import VERSION
    from bms import kernels
    from bms.boot import _boot_line
    from bms.board import build_hal, BoardError
    from bms.app import App
    from bms.config import Config
    from bms.runner import BoardRunner
    from bms.persist.keeper import Keeper
    from bms.persist.state_record import StateStore
    from bms.persist.event_log import EventLog
    from bms.console import Console
    try:
        hal = build_hal(board, cfg, kernels, machine, clock)
    except BoardError as e:
        # Nothing was built, so no output was ever driven: the pins stay
        # inputs (contactor drivers off). Say why and stay in the REPL.
        _boot_line({"version": VERSION, "board": board.get("board"), "error": str(e)})
        return None
    app = App(cfg, hal, kernels)
    cause = machine.reset_cause()
    wdt_reset = cause == machine.WDT_RESET
    app.boot(wdt_reset)
    log = EventLog(root)
    keeper = Keeper(StateStore(root), log)
    restored = keeper.restore(app)  # before the first tick: latched faults keep the contactors open
    if port is None:
        from bms.stdio_port import StdioPort
        port = StdioPort()
    console = Console(app, port, raw, Config, store, log, cfg.telemetry_ms)
    _boot_line({"version": VERSION, "board": board.get("board"), "hal": "board",
                "reset_cause": "wdt" if wdt_reset else cause, "config": source,
                "warnings": store.warnings, "restored_faults": restored})
    wdt = machine.WDT(timeout=board.get("watchdog_ms", 2000))
    gc.collect()
    runner = BoardRunner(_WithKeeper(app, keeper), cfg.tick_ms, clock, wdt, machine.reset, console)
    runner.run(max_ticks)
    return runner
