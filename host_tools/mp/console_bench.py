# Runs under the MicroPython unix port: what the serial console costs per
# call between ticks, next to the tick itself, on a 16-cell app with a
# resting-pack HAL model. Prints one JSON object (bmsctl bench shows it).
#   micropython console_bench.py FIRMWARE_DIR
import sys
import time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.console import Console  # noqa: E402
from resting_hal import RestingPackHal  # noqa: E402

N = 16
REPS = 200


class Port:
    def __init__(self):
        self.data = b""
        self.pos = 0
        self.bytes_out = 0

    def read_into(self, buf, n):
        k = min(n, len(self.data) - self.pos)
        for i in range(k):
            buf[i] = self.data[self.pos + i]
        self.pos += k
        return k

    def write(self, text):
        self.bytes_out += len(text)


raw = {"cells": N, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"}
app = App(Config(raw), RestingPackHal(N, 4))
port = Port()
con = Console(app, port, raw, Config, None, None, 0)
now = 0
for _ in range(50):
    app.tick(now)
    now += 100


def median(fn):
    t = []
    for _ in range(REPS):
        t0 = time.ticks_us()
        fn()
        t.append(time.ticks_diff(time.ticks_us(), t0))
    t.sort()
    return t[REPS // 2]


def tick():
    global now
    app.tick(now)
    now += 100


def feed(data):
    def f():
        port.data = data
        port.pos = 0
        con.service(now)
    return f


def telemetry():
    con.write_telemetry(now)


out = {"cells": N, "tick_us": median(tick),
       "idle_us": median(feed(b"")),
       "telemetry_us": median(telemetry),
       "flood_512_us": median(feed(bytes((i * 37) & 0x7F | 0x20 for i in range(512)))),
       "status_us": median(feed(b"status\n")),
       "cells_us": median(feed(b"cells\n")),
       "bad_line_us": median(feed(b"\x00\xff garbage\n"))}
port.bytes_out = 0
telemetry()
out["telemetry_bytes"] = port.bytes_out
import json  # noqa: E402
print(json.dumps(out))
