# Start-up. With arguments (the host simulation, unix port): parse them,
# read the configuration, build the sim HAL and the app, run the loop
# paced by the plant (bms/hal/sim.py). Without (a board, or the virtual
# board): read board.json and the stored configuration, then hand over to
# bms/board_start.py. Neither module imports the other's entry.
import sys
import json
from bms import VERSION
from bms.config import Config, ConfigError


def _args(argv):
    opts = {"config": None, "sim": None, "kernels": "viper", "reset-cause": "power", "state-dir": None,
            "afe": None, "board": None, "chips": None, "can": None, "can-out": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and a[2:] in opts and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1]
            i += 2
        else:
            raise SystemExit("usage: main.py --config FILE --sim HOST:PORT|fd:N [--kernels viper|ref] [--reset-cause power|wdt] [--state-dir DIR]"
                             " [--afe bq76952|ltc6811|ltc6813|direct_adc --board FILE --chips DIR] [--can PROFILE --can-out FILE --chips DIR]; got " + repr(a))
    return opts


def load_config(path):
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise ConfigError("config: cannot read " + path + ": " + str(e))
    except ValueError as e:
        raise ConfigError("config: " + path + " is not valid JSON: " + str(e))
    return Config(raw)


def main(argv):
    if not argv:
        return board_main()
    opts = _args(argv)
    if opts["kernels"] == "ref":
        from bms import kernels_ref as kernels
    else:
        from bms import kernels
    error = None
    try:
        cfg = load_config(opts["config"])
    except ConfigError as e:
        error = str(e)
        cfg = None
    if not opts["sim"]:
        if error:
            print("CONFIG ERROR:", error)
            sys.exit(2)
        raise SystemExit("only the sim HAL is available under the unix port")
    from bms.hal.sim import SimHal, open_link, send_hello, hello, sim_loop
    stream = open_link(opts["sim"])
    if error:
        # Report through the socket so the host can show it, then stop.
        send_hello(stream, {"error": error})
        stream.close()
        print("CONFIG ERROR:", error)
        sys.exit(2)
    if opts["afe"]:
        # The plant's values go through a chip model and the board's real
        # HAL and drivers (host_tools/mp/chips/afe_sim.py).
        if opts["chips"]:
            sys.path.append(opts["chips"])
        from chips.afe_sim import AfeSimHal
        try:
            hal = AfeSimHal(cfg, kernels, stream, opts["afe"], opts["board"])
        except (ValueError, KeyError, OSError) as e:
            send_hello(stream, {"error": "board: " + str(e)})
            stream.close()
            sys.exit(2)
    else:
        hal = SimHal(cfg, kernels, stream)
    from bms.app import App
    app = App(cfg, hal, kernels)
    # The simulator says how the "board" was reset; a board asks machine.
    app.boot(opts["reset-cause"] == "wdt")
    keeper = None
    if opts["state-dir"]:
        from bms.persist.keeper import Keeper
        from bms.persist.state_record import StateStore
        from bms.persist.event_log import EventLog
        keeper = Keeper(StateStore(opts["state-dir"]), EventLog(opts["state-dir"]))
        keeper.restore(app)  # before the first tick: latched faults keep the contactors open
    can = None
    if opts["can"]:
        # the inverter CAN on an MCP2515 model; the plant's inverter reads
        # the frames (host_tools/mp/chips/can_sim.py, host_tools/inverter.py)
        if opts["chips"] and opts["chips"] not in sys.path:
            sys.path.append(opts["chips"])
        from chips.can_sim import SimCan
        can = SimCan(app, opts["can"], opts["can-out"])
    hal.hello(hello(cfg))
    sim_loop(app, hal, keeper, None, (can,) if can is not None else ())


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
        from bms import board_start
        return board_start.run_virtual(board, cfg, raw, store, source, root)
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
