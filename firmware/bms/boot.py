# Start-up: read the configuration, build the HAL and the app, run the loop.
import sys
import json
from bms import VERSION
from bms import faults as F
from bms import signals as S
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
    from bms.hal.sim import SimHal, open_link, send_hello
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


class LoopStats:
    """The virtual board's loop timing: a cycle (tick and everything served
    after it) longer than the tick period is an overrun, as on a board."""

    def __init__(self, period_ms):
        self.period_us = period_ms * 1000
        self.overruns = 0
        self.max_us = 0  # the longest cycle
        self.svc_max_us = 0  # the longest time in the services after the console (MQTT)
        self.cycles = 0


def sim_loop(app, hal, keeper=None, console=None, services=()):
    """Ticks paced by the host plant's frames until it goes away; the
    persistence step, the console and the other services (MQTT) between
    ticks. Ctrl-C or the end of the link leave the outputs safe (and tell
    the plant so)."""
    import gc
    import time
    now = 0
    loop = LoopStats(app.cfg.tick_ms)
    for s in services:
        s.loop = loop
    try:
        while hal.receive():
            t0 = time.ticks_us()
            now = hal.now_ms
            app.tick(now)
            if keeper is not None:
                keeper.after_tick(app, now)
            if console is not None:
                console.service(now)
            t1 = time.ticks_us()
            for s in services:
                s.service(now)
            ds = time.ticks_diff(time.ticks_us(), t1)
            if ds > loop.svc_max_us:
                loop.svc_max_us = ds
            if services:
                gc.collect()  # as the board runner does: at one fixed point, never inside a tick or a service
            dt = time.ticks_diff(time.ticks_us(), t0)
            loop.cycles += 1
            if dt > loop.max_us:
                loop.max_us = dt
            if dt > loop.period_us:
                loop.overruns += 1
    except KeyboardInterrupt:
        app.safe(now)
        hal.write(app.state)
        print("stopped by Ctrl-C: outputs in the safe state")
    finally:
        app.safe(now)


def hello(cfg):
    """What the host plant needs to know of the firmware and its settings."""
    return {
        "version": VERSION,
        "cells": cfg.cells,
        "temps": cfg.temps,
        "faults": F.NAMES,
        "severity": [row[3] for row in F.TABLE],
        "above": [row[2] for row in F.TABLE],
        "latching": [1 if row[5] else 0 for row in F.TABLE],
        "units": [row[6] for row in F.TABLE],
        "recover": list(cfg.fault_rec),
        "trip_delay_ms": list(cfg.fault_trip_ms),
        "trip": list(cfg.fault_trip),
        "signals": S.NAMES,
        "tick_ms": cfg.tick_ms,
        "settings": {
            "imbalance_window_mv": list(cfg.imbalance_window_mv),
            "imbalance_max_ma": cfg.capacity_mah * cfg.imbalance_max_cpm // 1000,
            "precharge_tries": cfg.precharge_tries,
            "precharge_timeout_ms": cfg.precharge_timeout_ms,
            "precharge_retry_ms": cfg.precharge_retry_ms,
            "flow_window_ms": cfg.flow_window_ms // cfg.tick_ms * cfg.tick_ms,
            "flow_hz_full": cfg.flow_hz_full,
            "balance_floor_mv": cfg.balance_floor_mv,
            "balance_max_temp_dc": cfg.balance_max_temp_dc,
            "cell_gain_q16": list(cfg.cell_gain_q16),
            "cell_offset_mv": list(cfg.cell_offset_mv),
            "flow_spinup_ms": cfg.flow_spinup_ms,
            "pump_min_duty_pm": cfg.pump_min_duty_pm,
            "pump_setpoint_dc": cfg.pump_setpoint_dc,
            "grid_reserve_cpct": cfg.grid_reserve_cpct,
        },
    }


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ConfigError(path + ": cannot read: " + str(e))
    except ValueError as e:
        raise ConfigError(path + ": not valid JSON: " + str(e))


def _boot_line(obj):
    # One JSON line on the console, so host tools (flash, monitor) see the
    # running version and how the board started.
    sys.stdout.write(json.dumps({"boot": obj}) + "\n")


def board_main(root=".", machine=None, clock=None, port=None, max_ticks=-1):
    """On a board (and on the virtual board): board.json says which HAL,
    config.json (written by `bmsctl flash` or `config set`, with its CRC)
    holds the user's configuration. The console serves stdin/stdout."""
    from bms.persist.config_store import ConfigStore
    try:
        board = _read_json(root + "/board.json")
        if not isinstance(board, dict) or "hal" not in board:
            raise ConfigError("board.json: missing field 'hal'")
    except ConfigError as e:
        _boot_line({"version": VERSION, "error": str(e)})
        return
    store = ConfigStore(root, validate=Config)
    try:
        raw, source = store.load()
        cfg = Config(raw)
    except (OSError, ConfigError) as e:
        # No valid configuration: nothing may be energised. Say so and stop.
        _boot_line({"version": VERSION, "board": board.get("board"), "error": str(e)})
        return
    if board["hal"] == "board":
        # A real board: front end, pins and watchdog from board.json
        # (bms/board_start.py). machine/clock/port are for tests on models.
        from bms import board_start
        return board_start.run(board, cfg, raw, store, source, root, machine, clock, port, max_ticks)
    if board["hal"] != "sim":
        _boot_line({"version": VERSION, "board": board.get("board"), "error": "board.json: hal %r is not supported by this build" % board["hal"]})
        return
    # The virtual board: the host plant is its front end (bms/board_start.py).
    from bms import board_start
    return board_start.run_virtual(board, cfg, raw, store, source, root)
