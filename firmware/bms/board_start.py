# Start-up on a board: read board.json (wiring) and config.json (the pack)
# from the filesystem, build the HAL and the app, report how the board was
# reset (a watchdog reset raises WATCHDOG_RESET before anything may close),
# restore the persisted state, then run the fixed-period board loop with
# the hardware watchdog. `machine` and the clock can be handed in (tests
# run this on the chip models under the unix port).
import json
import gc


class _WithKeeper:
    """The app as the runner sees it, with the persistence step after each
    tick (between ticks, as the simulator does)."""

    def __init__(self, app, keeper):
        self.app = app
        self.keeper = keeper
        self.state = app.state

    def tick(self, now_ms):
        self.app.tick(now_ms)
        self.keeper.after_tick(self.app, now_ms)

    def safe(self, now_ms):
        self.app.safe(now_ms)


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(what + ": cannot read " + path + ": " + str(e))
    except ValueError as e:
        raise ValueError(what + ": " + path + " is not valid JSON: " + str(e))


def build(machine, clock, root="", kernels=None):
    """Returns (app, runner_app, board dict). Raises ValueError (ConfigError
    and BoardError are ValueErrors) naming the file and the field."""
    from bms.boot import load_config
    from bms.board import build_hal
    from bms.app import App
    if kernels is None:
        from bms import kernels
    cfg = load_config(root + "config.json")
    board = _read_json(root + "board.json", "board")
    hal = build_hal(board, cfg, kernels, machine, clock)
    app = App(cfg, hal, kernels)
    runner_app = app
    state_dir = board.get("state_dir")
    if state_dir:
        from bms.persist.keeper import Keeper
        from bms.persist.state_record import StateStore
        from bms.persist.event_log import EventLog
        import os
        try:
            os.mkdir(root + state_dir)
        except OSError:
            pass  # exists already
        keeper = Keeper(StateStore(root + state_dir), EventLog(root + state_dir))
        keeper.restore(app)  # before the first tick: latched faults keep the contactors open
        runner_app = _WithKeeper(app, keeper)
    return cfg, app, runner_app, board


def main(machine=None, clock=None, root="", max_ticks=-1):
    if machine is None:
        import machine
    if clock is None:
        import time as clock
    from bms.runner import BoardRunner
    try:
        cfg, app, runner_app, board = build(machine, clock, root)
    except ValueError as e:
        # Nothing was built, so no output was ever driven: the pins stay
        # inputs (contactor drivers off). Say why and stay in the REPL.
        print("CONFIG ERROR:", e)
        return None
    cause = machine.reset_cause()
    wdt_reset = cause == machine.WDT_RESET
    print("boot: reset cause", cause, "(watchdog)" if wdt_reset else "")
    app.boot(wdt_reset)
    wdt = machine.WDT(timeout=board.get("watchdog_ms", 2000))
    gc.collect()
    runner = BoardRunner(runner_app, cfg.tick_ms, clock, wdt, machine.reset)
    runner.run(max_ticks)
    return runner
