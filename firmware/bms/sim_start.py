# Start-up of the host simulation (the unix port, `main.py --config FILE
# --sim LINK ...`): parse the arguments, read the configuration, build the
# sim HAL (or a front end's chip model behind the board's own HAL) and the
# app, run the loop paced by the plant (bms/hal/sim.py). Called by
# bms/boot.py when main.py has arguments; a board never loads it.
import sys
import json
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
            raise SystemExit("usage: main.py --config FILE --sim HOST:PORT|fd:N|fd:R,W [--kernels viper|ref] [--reset-cause power|wdt] [--state-dir DIR]"
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
