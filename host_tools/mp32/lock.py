# The 32-bit heap-lock run (tests/test_mp32_lock.py): the firmware on the
# real 31-bit integer model, every tick inside micropython.heap_lock(),
# so any value that leaves the small-int range (a big int) or any other
# allocation is a MemoryError. At the extremes the configuration accepts:
# 256 cells, 64 sensors, 2,000 Ah, 1 kA limits and ramp, and currents past
# anything a sensor can report (saturated by measure), at ticks of 10 ms,
# 100 ms and 1 s (and a 10 s stall); the clock starts before the 2**30
# wrap and crosses it. Faults, balancing, grid events and the contactors
# opening and closing all happen while locked. Prints one JSON line.
#   lock.py KERNELS CELLS TEMPS TICK_MS TICKS [CAPACITY_MAH] [LIMIT_MA]
import sys
import gc
import json
import micropython

KERNELS, N, M, TICK, TICKS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
CAP = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] != "probe" else 2000000
PROBE = "probe" in sys.argv
LIM = int(sys.argv[7]) if len(sys.argv) > 7 and sys.argv[7] != "probe" else 665000  # the OC trips (1.5 x + 1 A) just below the 1 kA maximum

from bms import ticks  # noqa: E402
from bms import faults as F  # noqa: E402
from bms.config import Config  # noqa: E402
from bms.hal.sim import SimHal, HDR, VERSION  # noqa: E402
from bms.app import App  # noqa: E402
if KERNELS == "ref":
    from bms import kernels_ref as K  # noqa: E402
else:
    from bms import kernels as K  # noqa: E402

WARM = 200  # ticks before the lock: boot, first scans, precharge
START_MS = 0x3FFFFFFF - (WARM + 40) * TICK  # the wrap falls early in the locked run
PERIOD = 400  # ticks of one profile cycle


def put16(b, o, v):
    b[o] = v & 0xFF
    b[o + 1] = (v >> 8) & 0xFF


def put32(b, o, v):
    # v may be negative: two's complement without a big int
    if v < 0:
        v = -v - 1
        b[o] = ~v & 0xFF
        b[o + 1] = ~(v >> 8) & 0xFF
        b[o + 2] = ~(v >> 16) & 0xFF
        b[o + 3] = ~(v >> 24) & 0xFF
    else:
        b[o] = v & 0xFF
        b[o + 1] = (v >> 8) & 0xFF
        b[o + 2] = (v >> 16) & 0xFF
        b[o + 3] = (v >> 24) & 0xFF


class Profile:
    """Sensor frames made in place, one per tick, from the tick number:
    a cycle of rest (balancing a spread pack), charge into over-voltage,
    discharge at 1.2 kA (over-current: the contactors open, then close
    again), a current far past the sensor's range, and a grid event asked
    while closed. Allocates nothing."""

    def __init__(self):
        self.k = 0
        self.now = START_MS
        self.stall = 0

    def readinto(self, buf, n=-1):
        k = self.k
        self.k = k + 1
        dt = TICK
        if k == WARM + 1500 // TICK + 60:
            dt = 10000  # a stalled loop: one 10 s step (measure caps dt there)
        self.now = ticks.add(self.now, dt)
        buf[0] = 0xA1
        buf[1] = 0xB5
        buf[2] = VERSION
        # the cycle in 100 ms units up to 100 ms ticks, in ticks above
        ph = (k * TICK // 100 if TICK <= 100 else k) % PERIOD
        buf[3] = 4 if 300 <= ph < 305 else 0  # clear the latched faults (SHORT_CIRCUIT) once the cause is gone
        put32(buf, 4, k & 0x3FFFFFFF)
        put32(buf, 8, self.now)
        # cells: rest 3300 mV with a 40 mV spread (balancing), charge up to
        # 3620 mV (CELL_OV, not CRIT), discharge down to 3000 mV
        if ph < 120:
            base = 3300
            cur = 0
        elif ph < 220:
            base = 3300 + (ph - 120) * 3
            cur = 60000  # 600 A charge (10 mA counts), within the 665 A limit
        elif ph < 260:
            base = 3280
            cur = -120000  # 1.2 kA discharge: past the 665 A limit (OC_DSG)
        elif ph < 280:
            base = 3290
            cur = None  # the i32 extreme, -2**31 + 1 (a big int here: written as bytes): SHORT_CIRCUIT, latched
        else:
            base = 3300
            cur = -1000  # 10 A discharge (a grid event is asked at 340, cancelled at 390)
        o = HDR
        j = k & 1
        for i in range(N):
            v = base + (i % 5) * 10 + j
            put16(buf, o, v * 10)
            o += 2
        for i in range(M):
            put16(buf, o, 2048 - (ph & 63) - i)
            o += 2
        if cur is None:
            buf[o] = 1
            buf[o + 1] = 0
            buf[o + 2] = 0
            buf[o + 3] = 0x80
        else:
            put32(buf, o, cur)
        pack = (base * N) // 10
        put32(buf, o + 4, pack)
        put32(buf, o + 8, pack)
        if cur is None and ph < 262:
            # and, briefly, the pack voltage at the i32 maximum (measure saturates
            # it at 2**21 mV): the energy counted per step is then largest
            buf[o + 4] = 0xFF
            buf[o + 5] = 0xFF
            buf[o + 6] = 0xFF
            buf[o + 7] = 0x7F
        put16(buf, o + 12, 2048)
        put16(buf, o + 14, 2050)
        put16(buf, o + 16, (k * 7) & 0xFFFF)
        buf[o + 18] = 8  # enable on
        buf[o + 19] = 0
        if ph == 340:
            buf[o + 20] = 1  # grid start: the largest event the configuration accepts
            put32(buf, o + 24, 100000)
            put32(buf, o + 28, 86400)
        elif ph == 390:
            buf[o + 20] = 2  # cancel
        else:
            buf[o + 20] = 0
        return n if n > 0 else len(buf)

    def write(self, data):
        return len(data)


def probe(app, hal, count=400):
    """The next ticks stage by stage, each locked on its own, to name the
    stage (and tick) that allocates or raises."""
    st = app.state
    for t in range(count):
        hal.receive()
        parts = [("hal.read", lambda: hal.read(st))]
        parts += [(type(s).__name__, (lambda s=s: s.tick(st, hal.now_ms))) for s in app.stages]
        parts.append(("hal.write", lambda: hal.write(st)))
        for name, fn in parts:
            micropython.heap_lock()
            try:
                fn()
                bad = None
            except MemoryError:
                bad = name
            except Exception as e:  # noqa
                bad = name + " raised " + repr(e)
            micropython.heap_unlock()
            if bad:
                return "%s (tick %d after, dt %d ms)" % (bad, t, st.dt_ms)
    return None


def main():
    user = {"cells": N, "temps": M, "capacity_mah": CAP, "chemistry": "LFP", "tick_ms": TICK,
            "max_charge_ma": LIM, "max_discharge_ma": LIM, "limit_ramp_ma_per_s": 1000000,
            "grid_max_power_w": 100000, "grid_max_duration_s": 86400, "grid_reserve_cpct": 1000,
            "balance_max_cells": N, "telemetry_ms": 0,
            # the short-circuit row (5 x the limit by default) at the largest trip accepted
            "faults": {"SHORT_CIRCUIT": [1000000, 0, LIM + 1000, 1000]}}
    cfg = Config(user)
    prof = Profile()
    hal = SimHal(cfg, K, prof)
    app = App(cfg, hal, K)
    app.boot(False)
    app.state.soc_cpct = 5000  # as if restored from a state record: grid events are allowed
    st = app.state
    for _ in range(WARM):
        hal.receive()
        app.tick(hal.now_ms)
        hal.write(st)
    gc.collect()
    if PROBE:
        print(probe(app, hal, TICKS))
        return
    done = 0
    err = None
    bal = opened = faulted = grid = wrapped = 0
    prev_now = hal.now_ms
    seen = bytearray(F.N_FAULTS)
    ev0 = st.ev_total
    g0 = st.grid_events
    micropython.heap_lock()
    try:
        while done < TICKS:
            hal.receive()
            app.tick(hal.now_ms)
            hal.write(st)
            done += 1
            if st.balance_count:
                bal += 1
            if st.outputs == 0:
                opened += 1
            if st.n_active:
                faulted += 1
                for i in range(F.N_FAULTS):
                    if st.fault_active[i]:
                        seen[i] = 1
            if st.grid_active:
                grid += 1
            if hal.now_ms < prev_now:
                wrapped += 1
            prev_now = hal.now_ms
    except MemoryError as e:
        err = e
    micropython.heap_unlock()  # once only: a second unlock would underflow the lock depth
    if err is not None:
        err = "MemoryError"
        where = probe(app, hal)
        if where:
            err += " in " + where
    if getattr(app, "last_error", None) is not None:
        sys.print_exception(app.last_error)
    print(json.dumps({"cells": N, "temps": M, "tick_ms": TICK, "capacity_mah": CAP, "limit_ma": LIM,
                      "locked_ticks": done, "error": err, "internal_error": st.internal_error,
                      "balancing_ticks": bal, "open_ticks": opened, "fault_ticks": faulted,
                      "grid_ticks": grid, "grid_events": st.grid_events - g0, "wraps": wrapped,
                      "events": (st.ev_total - ev0) & 0x3FFFFFFF, "errors": app.errors,
                      "faults_active_at_end": [F.NAMES[i] for i in range(F.N_FAULTS) if st.fault_active[i]],
                      "faults_seen": [F.NAMES[i] for i in range(F.N_FAULTS) if seen[i]]}))


main()
