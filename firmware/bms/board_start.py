# Start-up on a board, called by bms.boot.board_main once board.json and
# the stored configuration are read and valid. A real board ("hal":
# "board"): build the HAL from the board configuration, report how
# the board was reset (a watchdog reset raises WATCHDOG_RESET before
# anything may close), restore the persisted state, then run the
# fixed-period board loop with the hardware watchdog; the persistence step
# and the console are served between ticks. `machine`, the clock and the
# console port can be handed in (tests run this on the chip models under
# the unix port). The virtual board ("hal": "sim") starts the same way
# from bms/vboard_start.py, with the host plant as its front end. This
# module never imports bms.boot.
import gc
import sys
import json

looping = False  # the control loop has started: a failure from here on is the runner's (bms/boot.py)


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
    ends in the safe state and machine.reset()). A start-up that fails:
    None on a bench board (the REPL, as before), the locked stand-by on a
    production one (bms/standby.py)."""
    global looping
    if machine is None:
        import machine
    if clock is None:
        import time as clock
    from bms import VERSION
    hal = wdt = None
    try:
        from bms import kernels
        from bms.config import drop
        # the board file's parser is boot-only: dropped once the HAL is built
        parser = "bms.board"
        loaded = parser not in sys.modules
        from bms.board import build_hal, BoardError
        from bms.runner import BoardRunner
        try:
            hal = build_hal(board, cfg, kernels, machine, clock)
        except BoardError as e:
            # Nothing was built, so no output was ever driven: the pins stay
            # inputs (contactor drivers off). Say why and stay in the REPL
            # (bench) or the stand-by (production).
            boot_line({"version": VERSION, "board": board.get("board"), "error": str(e)})
            return _standby(board, root, "board: " + str(e), None, machine, clock, port, None, max_ticks)
        build_hal = BoardError = None
        if loaded:
            drop((parser,))
        cause = machine.reset_cause()
        wdt_reset = cause == machine.WDT_RESET
        app, keeper, console, services = _assemble(board, cfg, raw, store, source, root, hal, kernels, wdt_reset,
                                                   "wdt" if wdt_reset else cause, port)
        if "can" in board:
            from bms.can_service import build as build_can, CanConfigError
            try:
                # first of the services: the inverter hears the limits on time
                services = (build_can(board["can"], app, machine, clock, clock.ticks_ms()),) + services
            except CanConfigError as e:
                # the pack runs without the inverter link (protection does not
                # need it); the boot line says why
                boot_line({"version": VERSION, "board": board.get("board"), "can_error": str(e)})
        wdt = machine.WDT(timeout=board.get("watchdog_ms", 2000))
        gc.collect()
        runner = BoardRunner(_WithKeeper(app, keeper), cfg.tick_ms, clock, wdt, machine.reset, console, services)
        for s in services:
            s.loop = runner  # its overrun count goes out with the telemetry
    except Exception as e:  # noqa: any failure of the start-up; KeyboardInterrupt below
        return _start_failed(board, root, e, hal, machine, clock, port, wdt, max_ticks)
    except KeyboardInterrupt as e:
        return _start_failed(board, root, e, hal, machine, clock, port, wdt, max_ticks)
    if console.root is not None:
        import micropython
        micropython.kbd_intr(-1)  # production: Ctrl-C is a byte for the console, no KeyboardInterrupt
    looping = True
    runner.run(max_ticks)
    return runner


def _start_failed(board, root, e, hal, machine, clock, port, wdt, max_ticks):
    if board.get("mode", "bench") == "bench":
        raise e  # bench: the traceback and the REPL, as before
    from bms import VERSION
    what = "start-up: " + repr(e)
    boot_line({"version": VERSION, "board": board.get("board"), "error": what})
    return _standby(board, root, what, hal, machine, clock, port, wdt, max_ticks)


def _standby(board, root, what, hal, machine, clock, port, wdt, max_ticks):
    """The locked stand-by (production) or None (bench: the REPL)."""
    from bms.standby import locked, enter
    if not locked(root, board):
        return None
    return enter(root, board, what, hal, machine, clock, port, wdt, max_ticks)


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
    if board.get("mode", "bench") != "bench":
        # production (or a mode nobody checked: locked, not open)
        console.root = root
        port.ctrl_c_stops = False
    services, warnings = _services(board, app, console)
    mode = board.get("mode", "bench")
    if mode not in ("bench", "production"):
        warnings.append("mode: %r is neither bench nor production: running locked (production)" % (mode,))
    if console.root is not None:
        from bms.auth import load_key
        if load_key(root) is None:
            warnings.append("production mode: no valid key.bin: changing commands stay locked (reflash with the key)")
        load_key = None
        from bms.config import drop
        drop(("bms.auth", "bms.hmac256"))
    boot_line({"version": VERSION, "board": board.get("board"), "hal": board["hal"], "reset_cause": reset_cause,
                "config": source, "warnings": store.warnings + warnings, "restored_faults": restored})
    return app, keeper, console, services


def _services(board, app, console):
    """The services between ticks the board config asks for (MQTT). One
    that cannot start is a warning in the boot line, never a reason not to
    protect the pack. Returns (services, warnings)."""
    if "mqtt" not in board:
        return (), []
    try:
        from bms import mqtt_service
        svc = mqtt_service.build(board, app, console)
    except ImportError as e:  # the client library is not on the board (bmsctl flash installs it)
        return (), ["mqtt: not started: " + str(e)]
    except ValueError as e:  # MqttConfigError: names the field, never a secret
        return (), ["mqtt: not started: " + str(e)]
    return (svc,), []
