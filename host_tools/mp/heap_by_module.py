# Where the firmware's heap goes (MicroPython only; any port: the unix
# port's `micropython`, or the 32-bit WebAssembly build, since it needs no
# socket, no viper and no host process).
#
#   micropython heap_by_module.py FIRMWARE_DIR WORK_DIR CELLS MODE [TICKS [all|read]]
#   MODE: modules - heap taken by importing each firmware module (in the
#                   order the virtual board's start-up pulls them in), then
#                   by each piece of data built at boot; one JSON object
#         run     - the whole 16-cell start-up with its console (the
#                   virtual board's: SimHal on frames made in memory, App,
#                   persistence, Console on a memory port), then TICKS ticks
#                   with console commands between them (status, cells,
#                   faults, config get, config set, log, help); prints
#                   {"ok": ..., "peak": ...}. Run it at shrinking heap sizes
#                   to find the smallest heap that runs the firmware
#                   (unix port: -X heapsize=N; run it as a module from its
#                   .mpy, `MICROPYPATH=DIR micropython -m heap_by_module`,
#                   so its own code is not compiled on the heap).
#         steps   - nothing at import: a driver calls start() and tick()
#                   (host_tools/mp/heap_steps32.mjs on the 32-bit build).
# Loaded from .mpy the figures are module code as a board holds it; from
# .py they include the compiler's garbage.
import sys
import gc
import json

sys.path.insert(0, sys.argv[1])
WORK = sys.argv[2]
N = int(sys.argv[3])
MODE = sys.argv[4]
TICKS = int(sys.argv[5]) if len(sys.argv) > 5 else 3000
# "all": every console command below; "read": all but `config set` (which
# builds a second configuration while the pack runs)
CONSOLE = sys.argv[6] if len(sys.argv) > 6 else "all"
TEMPS = max(1, N // 4)
# MODE "steps": nothing runs at import; a driver calls import_one(),
# boot() and tick() one at a time (the WebAssembly port collects garbage
# only between its top-level calls, host_tools/mp32 style drivers).

try:
    import socket  # noqa: F401
except ImportError:
    # The WebAssembly port has no socket module; the sim HAL only uses it
    # in connect(), which is not called here.
    class _NoSocket:
        pass
    sys.modules["socket"] = _NoSocket()

# Leaves first, so each import's figure is mostly its own module.
MODULES = (
    "bms", "bms.faults", "bms.signals", "bms.config", "bms.state", "bms.kernels_ref",
    "bms.measure", "bms.diagnose", "bms.protect", "bms.soc_bounds", "bms.soc", "bms.limits", "bms.balance",
    "bms.thermal", "bms.grid", "bms.contactor", "bms.app", "bms.hal.sim",
    "bms.persist.crc", "bms.persist.config_store", "bms.persist.state_record", "bms.persist.event_log",
    "bms.persist.keeper", "bms.console", "bms.boot", "bms.board_start",
)


class MemPort:
    """The console's port on memory: serves queued command lines, counts
    what the console writes."""

    def __init__(self):
        self.pending = b""
        self.pos = 0
        self.out_bytes = 0
        self.oks = 0
        self.errs = 0
        self.err_lines = []  # the first few, to say what failed

    def send(self, line):
        self.pending = line
        self.pos = 0

    def read_into(self, buf, n):
        got = 0
        p = self.pending
        while got < n and self.pos < len(p):
            buf[got] = p[self.pos]
            self.pos += 1
            got += 1
        return got

    def write(self, text):
        self.out_bytes += len(text)
        if text.startswith("OK "):
            self.oks += 1
        elif text.startswith("ERR "):
            self.errs += 1
            if len(self.err_lines) < 4:
                self.err_lines.append(text.strip())


class GenStream:
    """Sensor frames made in place (no replay buffer): a charge up to the
    over-voltage warning and back, a current that swings, cells spread so
    they balance, temperatures that drift."""

    def __init__(self, size):
        self.size = size
        self.k = 0

    def readinto(self, buf, n=-1):
        from bms.hal.sim import HDR, VERSION
        k = self.k
        now = k * 100
        buf[0] = 0xA1
        buf[1] = 0xB5
        buf[2] = VERSION
        buf[3] = 0
        for j in range(4):
            buf[4 + j] = (k >> (8 * j)) & 0xFF
            buf[8 + j] = (now >> (8 * j)) & 0xFF
        phase = k % 1200
        if phase >= 600:
            phase = 1200 - phase
        base_mv = 3300 + phase * 270 // 600
        p = HDR
        for i in range(N):
            raw = (base_mv + (i % 7) * 6) * 10
            buf[p] = raw & 0xFF
            buf[p + 1] = raw >> 8
            p += 2
        for i in range(TEMPS):
            raw = 2048 - phase * 2 - i
            buf[p] = raw & 0xFF
            buf[p + 1] = raw >> 8
            p += 2
        cur = 5000 if (k // 50) % 2 == 0 else -3000
        if cur < 0:
            cur += 1 << 32
        pack = base_mv * N // 10
        for j in range(4):
            buf[p + j] = (cur >> (8 * j)) & 0xFF
            buf[p + 4 + j] = (pack >> (8 * j)) & 0xFF
            buf[p + 8 + j] = (pack >> (8 * j)) & 0xFF
        buf[p + 12] = 0x00
        buf[p + 13] = 0x08
        buf[p + 14] = 0x00
        buf[p + 15] = 0x08
        buf[p + 16] = (k * 7) & 0xFF
        buf[p + 17] = 0
        buf[p + 18] = 8  # enable input on
        for j in range(19, 32):
            buf[p + j] = 0
        self.k = k + 1
        return self.size

    def write(self, buf):
        return len(buf)


def mem():
    gc.collect()
    return gc.mem_alloc()


def user_config():
    return {"version": 1, "cells": N, "temps": TEMPS, "capacity_mah": 100000, "chemistry": "LFP"}


def boot(out=None):
    """The virtual board's start-up (bms/vboard_start.py run_virtual) on the
    in-memory front end. Returns (app, hal, keeper, console, port)."""
    def step(name):
        if out is not None:
            out.append((name, mem()))
    from bms.persist.config_store import ConfigStore
    from bms.config import Config
    from bms import kernels_ref as kernels
    step("start")
    store = ConfigStore(WORK, validate=Config)
    store.save(user_config())
    raw, source = store.load()
    step("config json")
    cfg = Config(raw)
    step("Config")
    from bms.hal.sim import SimHal, HDR, SENSOR_TAIL
    hal = SimHal(cfg, kernels, GenStream(HDR + 2 * N + 2 * TEMPS + SENSOR_TAIL))
    step("SimHal")
    from bms.app import App
    app = App(cfg, hal, kernels)
    app.boot(False)
    step("App")
    from bms.persist.keeper import Keeper
    from bms.persist.state_record import StateStore
    from bms.persist.event_log import EventLog
    log = EventLog(WORK)
    keeper = Keeper(StateStore(WORK), log)
    keeper.restore(app)
    step("Keeper")
    from bms.console import Console
    port = MemPort()
    console = Console(app, port, raw, Config, store, log, cfg.telemetry_ms)
    step("Console")
    return app, hal, keeper, console, port


COMMANDS = (b"status\n", b"cells\n", b"faults\n", b"config get\n", b"config get tick_ms\n",
            b"config set balance_max_cells 6\n", b"log 5\n", b"help\n", b"grid status\n",
            b"config set balance_max_cells 99999\n", b"version\n")


if CONSOLE == "read":
    COMMANDS = tuple(c for c in COMMANDS if not c.startswith(b"config set"))


def mode_modules():
    rows = []
    base = mem()
    for name in MODULES:
        before = set(sys.modules)
        a = mem()
        __import__(name)
        b = mem()
        extra = [m for m in sys.modules if m not in before and m != name]
        rows.append([name, b - a, extra])
    code = mem() - base
    steps = []
    objs = boot(steps)
    data = []
    for i in range(1, len(steps)):
        data.append([steps[i][0], steps[i][1] - steps[i - 1][1]])
    total = mem() - base
    print(json.dumps({"modules": rows, "code_bytes": code, "data": data, "boot_total_bytes": total,
                      "base_bytes": base, "objs": len(objs)}))


G = {}


def start():
    G["objs"] = boot()
    G["c"] = 0
    G["i"] = 0


def tick():
    app, hal, keeper, console, port = G["objs"]
    i = G["i"]
    hal.receive()
    now = hal.now_ms
    app.tick(now)
    keeper.after_tick(app, now)
    if i % 97 == 50:
        port.send(COMMANDS[G["c"] % len(COMMANDS)])
        G["c"] += 1
    console.service(now)
    G["i"] = i + 1
    return app.state.internal_error


def mode_run():
    peak = 0
    ok = False
    err = None
    ticks = 0
    try:
        app, hal, keeper, console, port = boot()
        gc.collect()
        after_boot = gc.mem_alloc()
        c = 0
        for i in range(TICKS):
            hal.receive()
            now = hal.now_ms
            app.tick(now)
            keeper.after_tick(app, now)
            if i % 97 == 50:
                port.send(COMMANDS[c % len(COMMANDS)])
                c += 1
            console.service(now)
            m = gc.mem_alloc()
            if m > peak:
                peak = m
            ticks += 1
        # every command answered as at any heap size: only the out-of-range
        # `config set` is an ERR (a MemoryError in a command is one too)
        bad = 0
        for j in range(c):
            if COMMANDS[j % len(COMMANDS)].endswith(b"99999\n"):
                bad += 1
        oks, errs = port.oks, port.errs
        err_lines = port.err_lines
        ok = not app.state.internal_error and errs == bad and oks == c - bad
    except MemoryError:
        err = "MemoryError"
        after_boot = oks = errs = err_lines = None
    print(json.dumps({"ok": ok, "error": err, "ticks": ticks, "after_boot": after_boot, "peak": peak,
                      "console_ok": oks, "console_err": errs,
                      "console_err_lines": err_lines}))


if MODE == "modules":
    mode_modules()
elif MODE == "run":
    mode_run()
