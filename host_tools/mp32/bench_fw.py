# MicroPython side of the 32-bit memory bench (host_tools/mp32/bench.py):
# the firmware as a board assembles it (bms.board_start: app, state
# record and event log, the serial console), loaded from bytecode .mpy,
# fed a recorded 1-hour run's sensor frames from a file; the board
# runner's loop order (tick, persistence, console, gc.collect). Prints
# one JSON line: heap of the interpreter alone, with the module code,
# after boot, and its peak over the run; tick times.
#   bench_fw.py CONFIG.json SENSOR_FRAMES ROOT
import sys
import gc
import json
import time

gc.collect()
base = gc.mem_alloc()


class FrameFiles:
    def __init__(self, rx_path):
        self.rx = open(rx_path, "rb")

    def readinto(self, buf, n=-1):
        return self.rx.readinto(buf)

    def write(self, data):
        pass


class NullPort:
    """The serial console's port with nobody typing (telemetry is written
    and dropped, as to a closed USB port)."""

    def read_into(self, buf, n):
        return 0

    def write(self, text):
        pass


R = {}


def main(cfg_path, rx_path, root):
    from bms import kernels_ref as kernels
    from bms.config import Config
    from bms.hal.sim import SimHal
    from bms import board_start
    from bms.persist.config_store import ConfigStore
    from bms.app import App  # noqa: F401  (imported by _assemble: counted as code)
    from bms.console import Console  # noqa: F401
    from bms.persist.keeper import Keeper  # noqa: F401
    from bms.persist.state_record import StateStore  # noqa: F401
    from bms.persist.event_log import EventLog  # noqa: F401
    R.update(cfg_path=cfg_path, rx_path=rx_path, root=root, kernels=kernels, Config=Config, SimHal=SimHal,
             board_start=board_start, ConfigStore=ConfigStore, phase=0)


def step():
    """Called once per cycle by run.mjs --step (gc.collect() only frees
    between such calls on this build)."""
    gc.collect()
    ph = R["phase"]
    if ph == 0:
        R["code"] = gc.mem_alloc() - base
        with open(R["cfg_path"]) as f:
            raw = json.load(f)
        cfg = R["Config"](raw)
        store = R["ConfigStore"](R["root"], validate=R["Config"])
        hal = R["SimHal"](cfg, R["kernels"], FrameFiles(R["rx_path"]))
        app, keeper, console, _services = R["board_start"]._assemble({"board": "bench", "hal": "sim"}, cfg, raw, store, "bench",
                                                          R["root"], hal, R["kernels"], False, "power", NullPort())
        R.update(app=app, keeper=keeper, console=console, hal=hal, phase=1, n=0, tsum=0, tmax=0, peak=0, peak_at=-1,
                 live_max=0)
        del raw, cfg, store
        return 1
    if ph == 1:
        R["booted"] = gc.mem_alloc()
        R["phase"] = 2
        return 1
    live = gc.mem_alloc()  # after the collect: what the firmware holds
    if live > R["live_max"]:
        R["live_max"] = live
    hal = R["hal"]
    app = R["app"]
    if not hal.receive():
        print(json.dumps({"ticks": R["n"], "interpreter": base, "code": R["code"], "booted": R["booted"],
                          "data": R["booted"] - base - R["code"], "peak": R["peak"], "peak_at": R["peak_at"],
                          "live_max": R["live_max"], "tick_mean_us": R["tsum"] // R["n"] if R["n"] else 0,
                          "tick_max_us": R["tmax"], "internal_error": app.state.internal_error}))
        return 0
    t0 = time.ticks_us()
    now = hal.now_ms
    app.tick(now)
    R["keeper"].after_tick(app, now)
    R["console"].service(now)
    dt = time.ticks_diff(time.ticks_us(), t0)
    R["tsum"] += dt
    if dt > R["tmax"]:
        R["tmax"] = dt
    m = gc.mem_alloc()  # before the next collect: held plus this cycle's garbage
    if m > R["peak"]:
        R["peak"] = m
        R["peak_at"] = R["n"]
    R["n"] += 1
    return 1


main(*sys.argv[1:4])
