# Runs under MicroPython: the board runner against models of the clock,
# the watchdog and machine.reset, with a HAL model that reports a healthy
# pack. Prints one JSON line of what happened.
import sys
import json
sys.path.insert(0, sys.argv[1])
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.runner import BoardRunner  # noqa: E402
from bms.state import IN_ENABLE  # noqa: E402

MODE = sys.argv[2]
PERIOD = 100


class Clock:
    # ticks wrap at 2**30 like the boards'; each tick "takes" a varying time
    def __init__(self, start):
        self.t = start
        self.sleeps = []

    def ticks_ms(self):
        return self.t

    def ticks_add(self, a, b):
        return (a + b) & 0x3FFFFFFF

    def ticks_diff(self, a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.t = (self.t + ms) & 0x3FFFFFFF


class Wdt:
    feeds = 0

    def feed(self):
        Wdt.feeds += 1


class Reset(Exception):
    pass


resets = []


def reset():
    resets.append(1)


class Hal:
    def __init__(self, clock, cfg):
        self.clock = clock
        self.n = cfg.cells
        self.m = cfg.temps
        self.k = 0
        self.written = []

    def read(self, st):
        self.k += 1
        self.clock.t = (self.clock.t + 7 + (self.k * 13) % 40) & 0x3FFFFFFF  # the tick's own run time
        for i in range(self.n):
            st.raw_cells[i] = 33000 + (self.k * 7 + i * 3) % 11
        for i in range(self.m):
            st.raw_temps[i] = 2048 + (self.k + i) % 3
        st.raw_cool[0] = st.raw_cool[1] = 2048
        st.raw_current = 0
        st.raw_pack = sum(st.raw_cells) // 100  # 10 mV counts
        st.raw_bus = st.raw_pack
        st.raw_tach = 0
        st.inputs = IN_ENABLE | (st.outputs & 7)
        st.fresh = 1
        if MODE == "error" and self.k == 30:
            raise RuntimeError("a bug")
        if MODE == "ctrl-c" and self.k == 30:
            raise KeyboardInterrupt

    def write(self, st):
        self.written.append(st.outputs)

    def safe(self):
        self.written.append(-1)


cfg = Config({"cells": 4, "temps": 2, "capacity_mah": 10000, "chemistry": "LFP"})
clock = Clock(0x3FFFFFFF - 1000)  # wraps during the run
hal = Hal(clock, cfg)
app = App(cfg, hal)
class Console:
    # a model of the serial console: Ctrl-C arrives on the line at tick 30
    calls = 0
    # production mode (bms/console.py: root set): a KeyboardInterrupt that
    # is not the authenticated `repl` (maintenance) must reset, never REPL
    root = "." if MODE.startswith("prod-") else None
    maintenance = False

    def service(self, now):
        Console.calls += 1
        if MODE in ("console-ctrl-c", "prod-interrupt", "prod-maintenance") and Console.calls == 30:
            self.maintenance = MODE == "prod-maintenance"
            raise KeyboardInterrupt


runner = BoardRunner(app, PERIOD, clock, Wdt(), reset, Console())
starts = []
orig = app.tick


def tick(now):
    starts.append(now)
    orig(now)


app.tick = tick
err = None
try:
    runner.run(60)
except KeyboardInterrupt:
    err = "KeyboardInterrupt"
st = app.state
print(json.dumps({
    "ticks": runner.ticks, "starts": starts, "feeds": Wdt.feeds, "resets": len(resets), "err": err,
    "outputs_after": st.outputs, "balance_after": st.balance_count, "internal_error": st.internal_error,
    "last_written": hal.written[-3:], "overruns": runner.overruns,
    "max_closed": max(hal.written), "console_calls": Console.calls,
}))
