# Start-up on a board (and on the virtual board): read board.json and the
# stored configuration, then hand over to bms/board_start.py. With
# arguments (the host simulation on the unix port) the entry is
# bms/sim_start.py instead, loaded only then: a board never holds the
# simulation's argument parsing. Neither start-up imports the other's entry.
import sys
import json
from bms import VERSION
from bms.config import Config, ConfigError


def main(argv):
    if not argv:
        return board_main()
    from bms.sim_start import main as sim_main
    return sim_main(argv)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ConfigError(path + ": cannot read: " + str(e))
    except ValueError as e:
        raise ConfigError(path + ": not valid JSON: " + str(e))


def board_main(root=".", machine=None, clock=None, port=None, max_ticks=-1):
    """On a board (and on the virtual board): board.json says which HAL,
    config.json (written by `bmsctl flash` or `config set`, with its CRC)
    holds the user's configuration. The console serves stdin/stdout.
    A start-up that fails on a production board ends in the locked
    stand-by (bms/standby.py), on a bench board in the REPL as before."""
    board = None
    try:
        from bms.persist.config_store import ConfigStore
        from bms.board_start import boot_line as _boot_line
        try:
            board = _read_json(root + "/board.json")
            if not isinstance(board, dict) or "hal" not in board:
                raise ConfigError("board.json: missing field 'hal'")
        except ConfigError as e:
            _boot_line({"version": VERSION, "error": str(e)})
            return _failed(root, board if isinstance(board, dict) else None, "board: " + str(e),
                           machine, clock, port, max_ticks)
        import micropython
        # production: Ctrl-C is a byte from here on, also during the start-up
        # (main.py did it already when key.bin is there); bench: as before
        micropython.kbd_intr(3 if board.get("mode", "bench") == "bench" else -1)
        store = ConfigStore(root, validate=Config)
        try:
            raw, source = store.load()
            cfg = Config(raw)
        except (OSError, ConfigError) as e:
            # No valid configuration: nothing may be energised. Say so and stop.
            _boot_line({"version": VERSION, "board": board.get("board"), "error": str(e)})
            return _failed(root, board, "config: " + str(e), machine, clock, port, max_ticks)
        if board["hal"] == "board":
            # A real board: front end, pins and watchdog from board.json
            # (bms/board_start.py). machine/clock/port are for tests on models.
            from bms import board_start
            return board_start.run(board, cfg, raw, store, source, root, machine, clock, port, max_ticks)
        if board["hal"] != "sim":
            msg = "board.json: hal %r is not supported by this build" % board["hal"]
            _boot_line({"version": VERSION, "board": board.get("board"), "error": msg})
            return _failed(root, board, "board: " + msg, machine, clock, port, max_ticks)
        # The virtual board: the host plant is its front end (bms/board_start.py).
        from bms.vboard_start import run_virtual
        return run_virtual(board, cfg, raw, store, source, root)
    except Exception as e:  # noqa: any failure of the start-up (the loop's own end is not one)
        if _looping() or not _locked(root, board):
            raise
        return _failed(root, board, "start-up: " + repr(e), machine, clock, port, max_ticks)
    except KeyboardInterrupt as e:  # Ctrl-C before kbd_intr(-1) took effect
        if _looping() or not _locked(root, board):
            raise  # after the loop ran: the maintenance REPL (the runner made the outputs safe)
        return _failed(root, board, "start-up: " + repr(e), machine, clock, port, max_ticks)


def _looping():
    # the control loop has started (bms/board_start.py): what ends it is the
    # runner's business (outputs safe, then a reset or the maintenance REPL)
    m = sys.modules.get("bms.board_start")
    return m is not None and m.looping


def _locked(root, board):
    from bms.standby import locked
    return locked(root, board if isinstance(board, dict) else None)


def _failed(root, board, what, machine, clock, port, max_ticks, hal=None, wdt=None):
    """A start-up that failed before the loop ran: the REPL on a bench
    board (returns None, as before), the locked stand-by on a production
    one (bms/standby.py)."""
    from bms.standby import locked, enter
    if not locked(root, board):
        return None
    return enter(root, board, what, hal, machine, clock, port, wdt, max_ticks)
