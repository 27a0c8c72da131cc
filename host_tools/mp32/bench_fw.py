# MicroPython side of the 32-bit memory bench (host_tools/mp32/bench.py):
# the firmware as a board assembles it (bms.board_start: app, state
# record and event log, the serial console), loaded from bytecode .mpy,
# fed a recorded 1-hour run's sensor frames from a file; the board
# runner's loop order (tick, persistence, console, gc.collect). Prints
# one JSON line: heap of the interpreter alone, with the module code,
# after boot, and its peak over the run; tick times; and by how many
# bytes the GC heap grew past the --heap it was given ("grew").
#   bench_fw.py CONFIG.json SENSOR_FRAMES ROOT
import sys
import gc
import json
import time

gc.collect()
base = gc.mem_alloc()
# This build adds a heap area only when an allocation fails after a full
# collect, which is where a board's fixed heap raises MemoryError. Its
# gc.mem_free() is the free bytes plus a constant "max new split", so
# alloc + free moves only when an area is added: a run whose sum never
# moves ran inside the heap it was given, fragmentation included.
area0 = gc.mem_alloc() + gc.mem_free()


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


R = {"grew": 0, "boot_peak": 0}


# The start-up in a board's order (bms/boot.py board_main, then
# bms/board_start.py): the entry's own imports, config.json read and
# validated by Config() (which loads the schema and the chemistry presets
# and drops them again), and only then the modules the running pack needs,
# then _assemble. One stage per cycle: this build's GC frees nothing
# inside a call (garbage waits until the call returns to JavaScript), so
# one call for it all would charge every stage's garbage to the heap at
# once, which a board's GC frees as it goes.
STAGES = ("import bms.boot", "import bms.persist.config_store", "import bms.board_start", "config.json read",
          "Config()", "import bms.kernels_ref", "import bms.hal.sim", "import bms.runner", "import bms.app", "import bms.console",
          "import bms.persist.keeper", "import bms.persist.state_record", "import bms.persist.event_log",
          "_assemble")


def main(cfg_path, rx_path, root):
    R.update(cfg_path=cfg_path, rx_path=rx_path, root=root, phase=0, stage=0, code=0, pre=0)


def _mod(name):
    m = __import__(name)
    for part in name.split(".")[1:]:
        m = getattr(m, part)
    return m


def _boot_peak(what):
    # nothing is freed inside a call here, so the heap in use at its end is
    # the most it held during the call
    m = gc.mem_alloc()
    if m > R["boot_peak"]:
        R["boot_peak"] = m
        R["boot_peak_in"] = what


def _stage(what):
    if what.startswith("import "):
        _mod(what[7:])
    elif what == "config.json read":
        with open(R["cfg_path"]) as f:
            R["raw"] = json.load(f)
    elif what == "Config()":
        R["cfg"] = _mod("bms.config").Config(R["raw"])
    else:
        cfg = R["cfg"]
        kernels = _mod("bms.kernels_ref")
        store = _mod("bms.persist.config_store").ConfigStore(R["root"], validate=_mod("bms.config").Config)
        hal = _mod("bms.hal.sim").SimHal(cfg, kernels, FrameFiles(R["rx_path"]))
        app, keeper, console, _services = _mod("bms.board_start")._assemble(
            {"board": "bench", "hal": "sim"}, cfg, R["raw"], store, "bench", R["root"], hal, kernels, False, "power",
            NullPort())
        R.update(app=app, keeper=keeper, console=console, hal=hal)
        del R["raw"], R["cfg"]


def step():
    """Called once per cycle by run.mjs --step (gc.collect() only frees
    between such calls on this build)."""
    ph = R["phase"]
    gc.collect()
    g = gc.mem_alloc() + gc.mem_free() - area0
    if g > R["grew"]:
        R["grew"] = g
        R["grew_at"] = STAGES[R["stage"] - 1] if ph == 0 else ("booted" if ph == 1 else 2 + R["n"])
    if ph == 0:
        i = R["stage"]
        if i and STAGES[i - 1].startswith("import "):
            R["code"] += gc.mem_alloc() - R["pre"]  # the module as it stays loaded (code counted as code)
        if i == len(STAGES):
            R.update(phase=1, n=0, tsum=0, tmax=0, peak=0, peak_at=-1, live_max=0)
            return 1
        R["pre"] = gc.mem_alloc()
        _stage(STAGES[i])
        _boot_peak(STAGES[i])
        R["stage"] = i + 1
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
                          "tick_max_us": R["tmax"], "internal_error": app.state.internal_error,
                          "grew": R["grew"], "boot_peak": R["boot_peak"], "grew_at": R.get("grew_at"), "boot_peak_in": R.get("boot_peak_in")}))
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
