# Start-up on a board, called by bms.boot.board_main once board.json and
# the stored configuration are read and valid. A real board ("hal":
# "board"): build the HAL from the board configuration, report how
# the board was reset (a watchdog reset raises WATCHDOG_RESET before
# anything may close), restore the persisted state, then run the
# fixed-period board loop with the hardware watchdog; the persistence step
# and the console are served between ticks. `machine`, the clock and the
# console port can be handed in (tests run this on the chip models under
# the unix port). The virtual board ("hal": "sim"): the same start-up with
# the host plant as its front end, paced by the plant's frames
# (bms/hal/sim.py). This module never imports bms.boot.
import gc
import sys
import json


def boot_line(obj):
    # One JSON line on the console, so host tools (flash, monitor) see the
    # running version and how the board started.
    sys.stdout.write(json.dumps({"boot": obj}) + "\n")


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
    from bms.board import build_hal, BoardError
    from bms.runner import BoardRunner
    try:
        hal = build_hal(board, cfg, kernels, machine, clock)
    except BoardError as e:
        # Nothing was built, so no output was ever driven: the pins stay
        # inputs (contactor drivers off). Say why and stay in the REPL.
        boot_line({"version": VERSION, "board": board.get("board"), "error": str(e)})
        return None
    cause = machine.reset_cause()
    wdt_reset = cause == machine.WDT_RESET
    app, keeper, console = _assemble(board, cfg, raw, store, source, root, hal, kernels, wdt_reset,
                                     "wdt" if wdt_reset else cause, port)
    wdt = machine.WDT(timeout=board.get("watchdog_ms", 2000))
    gc.collect()
    runner = BoardRunner(_WithKeeper(app, keeper), cfg.tick_ms, clock, wdt, machine.reset, console)
    runner.run(max_ticks)
    return runner


def _assemble(board, cfg, raw, store, source, root, hal, kernels, wdt_reset, reset_cause, port):
    """The app on its HAL, reset cause reported and persisted state restored
    before the first tick (latched faults keep the contactors open), the
    console on the serial port, and the boot line. Returns (app, keeper,
    console)."""
    from bms import VERSION
    from bms.app import App
    from bms.config import Config
    from bms.console import Console
    from bms.persist.keeper import Keeper
    from bms.persist.state_record import StateStore
    from bms.persist.event_log import EventLog
    app = App(cfg, hal, kernels)
    app.boot(wdt_reset)
    log = EventLog(root)
    keeper = Keeper(StateStore(root), log)
    restored = keeper.restore(app)
    if port is None:
        from bms.stdio_port import StdioPort
        port = StdioPort()
    console = Console(app, port, raw, Config, store, log, cfg.telemetry_ms)
    boot_line({"version": VERSION, "board": board.get("board"), "hal": board["hal"], "reset_cause": reset_cause,
                "config": source, "warnings": store.warnings, "restored_faults": restored})
    return app, keeper, console


def run_virtual(board, cfg, raw, store, source, root):
    """The virtual board: the plant's address is its wiring, given by the
    process that runs it (BMS_SIM_LINK), as is the reset cause."""
    import os
    from bms import VERSION
    from bms import kernels
    from bms.hal.sim import SimHal, connect, hello, sim_loop
    link = os.getenv("BMS_SIM_LINK") or board.get("sim_link")
    if not link:
        boot_line({"version": VERSION, "board": board.get("board"), "error": "sim HAL: no plant address (BMS_SIM_LINK)"})
        return
    host, port = link.rsplit(":", 1)
    stream = connect(host, int(port))
    reset = os.getenv("BMS_RESET_CAUSE") or "power"
    try:
        hal = SimHal(cfg, kernels, stream)
        app, keeper, console = _assemble(board, cfg, raw, store, source, root, hal, kernels, reset == "wdt",
                                         reset, None)
        hal.hello(hello(cfg))
        sim_loop(app, hal, keeper, console)
    finally:
        stream.close()
