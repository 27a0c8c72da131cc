# Runs under the MicroPython unix port: what the inverter CAN service costs
# per call between ticks, next to the tick, on a 16-cell app with a
# resting-pack HAL model; and the frame period jitter of the board runner
# in real time (the virtual board's runtime). Prints one JSON object
# (bmsctl bench shows it).
#   micropython can_bench.py FIRMWARE_DIR [REALTIME_S]
# The per-call costs use a stand-in chip that answers the driver's SPI
# transfers from a bytearray (so the Python chip model's own work is not
# counted); the SPI bytes per period come from the register-level model.
import sys
import time
sys.path.insert(0, sys.argv[1])
HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, HERE)
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.can_service import CanService, settings  # noqa: E402
from bms.drivers.mcp2515 import MCP2515  # noqa: E402
from resting_hal import RestingPackHal  # noqa: E402
from chips.bench import Bench  # noqa: E402
from chips.mcp2515 import MCP2515Model, CanBus, Peer  # noqa: E402

REALTIME_S = int(sys.argv[2]) if len(sys.argv) > 2 else 10
N = 16
REPS = 200


class StandIn:
    """Answers READ / READ STATUS / READ RX from registers; takes writes."""

    def __init__(self):
        self.r = bytearray(128)
        self.r[0x0E] = 0x80
        self.status = 0
        self.ins = 0
        self.n = 0
        self.addr = 0

    def cs(self, level):
        self.n = 0

    def mosi(self, buf):
        for i in range(len(buf)):
            b = buf[i]
            if self.n == 0:
                self.ins = b
                if b == 0xC0:  # RESET: configuration mode
                    self.r[0x0E] = 0x80
                elif b == 0x90:
                    self.addr = 0x61
            elif self.n == 1:
                self.addr = b
            elif self.ins == 0x02:
                self.r[self.addr & 0x7F] = b
                if self.addr == 0x0F:
                    self.r[0x0E] = b & 0xE0
                self.addr += 1
            elif self.ins == 0x05 and self.n == 3 and self.addr == 0x0F:
                self.r[0x0F] = b
                self.r[0x0E] = b & 0xE0
            self.n += 1

    def miso(self, buf):
        for i in range(len(buf)):
            if self.ins == 0xA0:
                buf[i] = self.status
            else:
                buf[i] = self.r[self.addr & 0x7F]
                self.addr += 1


def median(fn):
    t = []
    for _ in range(REPS):
        t0 = time.ticks_us()
        fn()
        t.append(time.ticks_diff(time.ticks_us(), t0))
    t.sort()
    return t[REPS // 2]


raw = {"cells": N, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"}
cfg = Config(raw)
app = App(cfg, RestingPackHal(N, 4))
now = 0
for _ in range(50):
    app.tick(now)
    now += 100
out = {"cells": N}


def tick():
    global now
    app.tick(now)
    now += 100


out["tick_us"] = median(tick)
b = Bench()
chip = StandIn()
spi = b.spi(1)
spi.chain = chip
cs = b.pin(17)
cs.listener = chip.cs
irq = b.pin(21)
irq.v = 1
import gc  # noqa: E402
gc.collect()
heap0 = gc.mem_alloc()
drv = MCP2515(spi, cs, irq, 8000000)
svc0 = CanService(app, drv, settings({"profile": "victron"}, cfg), 0, b.clock)
gc.collect()
out["service_heap_bytes"] = gc.mem_alloc() - heap0  # driver + service (victron), module code not included
del svc0
for prof in ("pylontech", "victron"):
    svc = CanService(app, drv, settings({"profile": prof, "period_ms": 100}, cfg), 0, b.clock)
    t = [0]

    def idle():
        # nothing due: a call between two periods
        svc.next_send = t[0] + 100000
        svc.service(t[0])

    def period():
        # a period starts: the error counters read, every frame of the profile queued
        chip.status = 0
        svc.next_send = t[0]
        svc.service(t[0])

    def flood():
        # frames keep arriving: RX_MAX read, the rest left for the next call
        irq.v = 0
        chip.status = 0x01
        chip.r[0x61] = 0x20
        chip.r[0x62] = 0x20
        chip.r[0x65] = 8
        svc.next_send = t[0] + 100000
        svc.service(t[0])
        irq.v = 1
        chip.status = 0

    def busoff():
        chip.r[0x2D] = 0x20
        svc.next_send = t[0]
        svc.busoff_since = -1
        svc.service(t[0])
        chip.r[0x2D] = 0

    out[prof] = {"up": svc.up, "frames": len(svc.frames), "idle_us": median(idle), "period_us": median(period),
                 "flood_us": median(flood), "bus_off_us": median(busoff)}
    # SPI traffic of one period on the register-level model
    b2 = Bench()
    m = MCP2515Model(b2.clock, 8000000, b2.pin(21))
    bus = CanBus(500000)
    bus.attach(m)
    bus.attach(Peer())
    s2 = b2.spi(1)
    s2.chain = m
    c2 = b2.pin(17)
    c2.listener = m.cs
    svc2 = CanService(app, MCP2515(s2, c2, b2.pin(21), 8000000), settings({"profile": prof}, cfg), 0, b2.clock)
    for k in range(10):  # let a period pass completely
        b2.clock.sleep_ms(100)
        svc2.service(100 * k)
    before = s2.bytes
    for k in range(10, 20):
        b2.clock.sleep_ms(100)
        svc2.service(100 * k)
    out[prof]["spi_bytes_per_s"] = s2.bytes - before

# frame period jitter: the board runner in real time, the CAN service after the console
from bms.runner import BoardRunner  # noqa: E402


class RealUs:
    def __init__(self):
        self.t0 = time.ticks_us()

    def ticks_us(self):
        return time.ticks_diff(time.ticks_us(), self.t0)


rc = RealUs()
m = MCP2515Model(rc, 8000000, None)
bus = CanBus(500000)
bus.attach(m)
peer = Peer()
bus.attach(peer)
bb = Bench()
s3 = bb.spi(1)
s3.chain = m
c3 = bb.pin(17)
c3.listener = m.cs
svc3 = CanService(app, MCP2515(s3, c3, None, 8000000), settings({"profile": "pylontech"}, cfg), time.ticks_ms(), time)
runner = BoardRunner(app, 100, time, None, None, None, (svc3,))
runner.run(REALTIME_S * 10)
ts = [t for t, i, _ in peer.rx if i == 0x351]
iv = [ts[k + 1] - ts[k] for k in range(len(ts) - 1)]
out["jitter"] = {"frames_351": len(ts), "intervals_us_min": min(iv) if iv else None, "intervals_us_max": max(iv) if iv else None,
                 "seconds": REALTIME_S, "overruns": runner.overruns}
import json  # noqa: E402
print(json.dumps(out))
