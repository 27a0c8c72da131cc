# Runs under the MicroPython unix port (not CPython): drives the firmware's
# App through the real SimHal with a replay stream instead of a socket, to
# prove the tick allocation-free (heap_lock) and to time it.
#
#   micropython tick_bench.py FIRMWARE_DIR CELLS MODE KERNELS
#   MODE: lock   - warm up, then run ticks under micropython.heap_lock()
#         bench  - median tick time and heap bytes allocated per tick
#         kernels - each kernel's time with viper and with its twin
# Prints one JSON object.
import sys
import gc
import time
import json
import micropython
from array import array

sys.path.insert(0, sys.argv[1])
N = int(sys.argv[2])
MODE = sys.argv[3]
KERNELS = sys.argv[4]
WINDOWS = len(sys.argv) > 5 and sys.argv[5] == "windows"  # balancing measurement windows on

from bms.config import Config  # noqa: E402
from bms.hal.sim import SimHal, HDR, SENSOR_TAIL, VERSION  # noqa: E402
from bms.app import App  # noqa: E402
from bms import kernels as KV, kernels_ref as KR  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
from bufcopy import copy as copy_frame  # noqa: E402

K = KR if KERNELS == "ref" else KV
FRAMES = 600
TEMPS = max(1, min(N, N // 4 if N >= 8 else N))


class ReplayStream:
    """Serves prebuilt sensor frames in a loop; accepts actuator frames."""

    def __init__(self, frames, size, count):
        self.frames = frames
        self.size = size
        self.count = count
        self.k = 0

    def readinto(self, buf, n=-1):
        k = self.k
        copy_frame(buf, self.frames, (k % self.count) * self.size, self.size)
        now = k * 100
        buf[4] = k & 0xFF
        buf[5] = (k >> 8) & 0xFF
        buf[6] = (k >> 16) & 0xFF
        buf[7] = (k >> 24) & 0x3F
        buf[8] = now & 0xFF
        buf[9] = (now >> 8) & 0xFF
        buf[10] = (now >> 16) & 0xFF
        buf[11] = (now >> 24) & 0x3F
        self.k = k + 1
        return self.size

    def write(self, buf):
        return len(buf)


def build_frames(size):
    # A charge that runs up into over-voltage (trips the warning and the
    # non-latching fault level, which block charging), with a spread that
    # makes the cells balance, warming cells, a current that swings, then
    # back down so the faults recover; a 3 s over-current opens the
    # contactors, which precharge and close again once it has recovered.
    buf = bytearray(size * FRAMES)
    for f in range(FRAMES):
        o = f * size
        buf[o] = 0xA1
        buf[o + 1] = 0xB5
        buf[o + 2] = VERSION
        phase = f if f < FRAMES // 2 else FRAMES - f
        base_mv = 3300 + phase * 270 // (FRAMES // 2)  # peak 3606 mV: CELL_OV, not CRIT
        p = o + HDR
        # a sense wire that opens for two scans, twice (cell 1 reads 0 V,
        # cell 2 the sum of both): the leaky bucket of VOLTAGE_CHANNEL
        # fills and drains again without tripping
        loose = N >= 3 and f in (150, 151, 350, 351)
        for i in range(N):
            raw = (base_mv + (i % 7) * 6) * 10
            if loose and i == 1:
                raw = 0
            elif loose and i == 2:
                raw = min(65535, raw + (base_mv + 6) * 10)
            buf[p] = raw & 0xFF
            buf[p + 1] = raw >> 8
            p += 2
        for i in range(TEMPS):
            raw = 2048 - phase * 2 - i
            buf[p] = raw & 0xFF
            buf[p + 1] = raw >> 8
            p += 2
        cur = 5000 if (f // 50) % 2 == 0 else -3000  # 10 mA counts
        if 400 <= f < 430:
            cur = -16000  # 160 A for 3 s: OC_DSG opens the contactors, then recovers
        if cur < 0:
            cur += 1 << 32
        for j in range(4):
            buf[p + j] = (cur >> (8 * j)) & 0xFF
        pack = base_mv * N // 10
        for j in range(4):
            buf[p + 4 + j] = (pack >> (8 * j)) & 0xFF
            buf[p + 8 + j] = (pack >> (8 * j)) & 0xFF
        buf[p + 12] = 0x00
        buf[p + 13] = 0x08
        buf[p + 14] = 0x00
        buf[p + 15] = 0x08
        buf[p + 16] = (f * 7) & 0xFF
        buf[p + 17] = 0
        buf[p + 18] = 8  # enable input on, contactor feedback open
    return buf


def make_app():
    # Returns the app, its HAL and the heap bytes the firmware objects hold
    # (the replay frames are built first and not counted).
    size = HDR + 2 * N + 2 * TEMPS + SENSOR_TAIL
    stream = ReplayStream(build_frames(size), size, FRAMES)
    gc.collect()
    a0 = gc.mem_alloc()
    user = {"cells": N, "temps": TEMPS, "capacity_mah": 100000, "chemistry": "LFP"}
    if WINDOWS:
        user["balance_window_ms"] = 300
        user["balance_bleed_ms"] = 1000
    cfg = Config(user)
    hal = SimHal(cfg, K, stream)
    app = App(cfg, hal, K)
    gc.collect()
    return app, hal, gc.mem_alloc() - a0


def step(app, hal):
    hal.receive()
    app.tick(hal.now_ms)


def small_int_check(app):
    # Every int the state holds must fit a 32-bit board's small int.
    st = app.state
    bad = []
    for name in dir(st):
        v = getattr(st, name)
        if isinstance(v, int) and not -(1 << 30) <= v < (1 << 30):
            bad.append(name)
        elif isinstance(v, array):
            for x in v:
                if not -(1 << 30) <= x < (1 << 30):
                    bad.append(name)
                    break
    return bad


def mode_lock():
    app, hal, _ = make_app()
    for _ in range(FRAMES + 50):
        step(app, hal)
    gc.collect()
    ticks = 2 * FRAMES
    done = 0
    err = None
    st = app.state
    events_before = st.ev_count + st.ev_head
    bal_ticks = 0
    open_ticks = 0
    fault_ticks = 0
    bad_ch_ticks = 0
    micropython.heap_lock()
    try:
        while done < ticks:
            step(app, hal)
            done += 1
            if st.balance_count:
                bal_ticks += 1
            if st.outputs == 0:
                open_ticks += 1
            if st.n_active:
                fault_ticks += 1
            if st.sig[16]:  # signals.BAD_CELL_CH
                bad_ch_ticks += 1
    except MemoryError:
        err = "MemoryError"
    finally:
        micropython.heap_unlock()
    print(json.dumps({"cells": N, "kernels": KERNELS, "locked_ticks": done, "error": err,
                      "internal_error": st.internal_error,
                      "events": st.ev_count + st.ev_head - events_before,
                      "balancing_ticks": bal_ticks, "open_ticks": open_ticks, "fault_ticks": fault_ticks,
                      "bad_channel_ticks": bad_ch_ticks,
                      "ranges_bad": small_int_check(app)}))


def mode_bench():
    app, hal, resident = make_app()
    for _ in range(FRAMES):
        step(app, hal)
    ticks = 1000
    times = array("i", [0] * ticks)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    peak = a0
    for i in range(ticks):
        hal.receive()
        t0 = time.ticks_us()
        app.tick(hal.now_ms)
        times[i] = time.ticks_diff(time.ticks_us(), t0)
        if i % 50 == 0:
            m = gc.mem_alloc()
            if m > peak:
                peak = m
    a1 = gc.mem_alloc()
    gc.enable()
    s = sorted(times)
    print(json.dumps({"cells": N, "kernels": KERNELS, "ticks": ticks, "median_us": s[ticks // 2],
                      "p99_us": s[ticks * 99 // 100], "alloc_bytes_per_tick": (a1 - a0) / ticks,
                      "resident_heap_bytes": resident, "peak_heap_bytes": max(peak, a1)}))


def mode_kernels():
    n = N
    mv = array("H", [3300 + (i * 37) % 200 for i in range(n)])
    raw = array("H", [v * 10 for v in mv])
    gain = array("i", [6554] * n)
    off = array("h", [0] * n)
    out = array("H", [0] * n)
    res = array("i", [0] * 4)
    mask = bytearray(n)
    bp = array("i", [3300, 10, 3300, 8, 0])
    tr = array("H", list(range(100, 4000, 100)))
    tt = array("h", list(range(1250, 1250 - 50 * len(tr), -50)))
    traw = array("H", [(i * 97) % 4095 for i in range(n)])
    tout = array("h", [0] * n)
    buf = bytearray(2 * n + 8)
    dp = array("i", [3350, 3300, 500, 1000, 100, 1])
    acc = array("i", [0] * n)
    flags = bytearray(n)
    # the fault table as the firmware packs it (31 rows, not per cell)
    from bms.protect import Protect
    prot = Protect(Config({"cells": 16, "temps": 4, "capacity_mah": 100000}), KV)
    from bms.signals import N_SIGNALS
    fsig = array("i", [3300, 3290, 0, 0, 52000, 10, 250, 240] + [0] * (N_SIGNALS - 8))  # every signal a row may read
    facc = array("i", [0] * len(prot.changed))
    fact = bytearray(len(prot.changed))
    fgone = bytearray(len(prot.changed))
    fio = array("i", [len(prot.changed), 100, 1, 0, 0, 0])
    # the SOC stage's tables (the LFP preset's OCV) and lags: per pack, not per cell
    cfg16 = Config({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"})
    ocv_mv, ocv_cpct, ocv_n = cfg16.ocv_mv, cfg16.ocv_cpct, len(cfg16.ocv_mv)
    band_io = array("i", [3280, 3300, 3320, 3340, 0, 50] + [0] * 6)
    lag_k, lag_tau = array("i", [300, 800]), array("i", [10000, 300000])
    lag_u, lag_rem = array("i", [0, 0]), array("i", [0, 0])
    tio = array("i", [20, 4075, 0, 0])
    cases = (
        ("fault_rows (31 rows)", lambda k: k.fault_rows(fsig, prot.rows, facc, fact, fgone, prot.changed, fio)),
        ("scale_cells", lambda k: k.scale_cells(raw, gain, off, out, n)),
        ("minmax_sum", lambda k: k.minmax_sum(mv, n, res)),
        ("balance_select", lambda k: k.balance_select(mv, n, bp, mask)),
        ("ntc_interp", lambda k: k.ntc_interp(traw, n, tr, tt, len(tr), tout)),
        ("unpack_u16", lambda k: k.unpack_u16(buf, 4, out, n)),
        ("pack_bits", lambda k: k.pack_bits(mask, n, buf, 0)),
        ("debounce", lambda k: k.debounce(mv, n, dp, acc, flags)),
        ("crc8_smbus", lambda k: k.crc8_smbus(buf, 0, 2 * n)),
        ("pec15", lambda k: k.pec15(buf, 0, 2 * n)),
        ("therm_minmax", lambda k: k.therm_minmax(traw, tout, n, tio)),
        ("interp (OCV)", lambda k: k.interp(ocv_mv, ocv_cpct, ocv_n, 3301)),
        ("soc_band (OCV)", lambda k: k.soc_band(ocv_mv, ocv_cpct, ocv_n, band_io)),
        ("soc_lags", lambda k: k.soc_lags(lag_k, lag_tau, lag_u, lag_rem, -500, 100)),
    )
    result = {}
    for name, fn in cases:
        t = []
        for k in (KV, KR):
            reps = 50
            fn(k)
            t0 = time.ticks_us()
            for _ in range(reps):
                fn(k)
            t.append(time.ticks_diff(time.ticks_us(), t0) / reps)
        result[name] = {"viper_us": t[0], "twin_us": t[1], "ratio": t[1] / t[0] if t[0] else 0}
    print(json.dumps({"cells": n, "kernels": result}))


def mode_stages():
    # The tick's parts as App.tick runs them: the HAL's read, each stage,
    # the HAL's write (and receive(), the frame's arrival, outside the tick).
    app, hal, _ = make_app()
    for _ in range(FRAMES):
        step(app, hal)
    st = app.state
    names = ["receive", "hal.read"] + [type(s).__name__ for s in app.stages] + ["hal.write"]
    ticks = 1000
    times = [array("i", [0] * ticks) for _ in names]
    gc.collect()
    gc.disable()
    for i in range(ticks):
        t0 = time.ticks_us()
        hal.receive()
        t1 = time.ticks_us()
        times[0][i] = time.ticks_diff(t1, t0)
        now = hal.now_ms
        hal.read(st)
        t0 = time.ticks_us()
        times[1][i] = time.ticks_diff(t0, t1)
        j = 2
        for stage in app.stages:
            stage.tick(st, now)
            t1 = time.ticks_us()
            times[j][i] = time.ticks_diff(t1, t0)
            t0 = t1
            j += 1
        hal.write(st)
        times[j][i] = time.ticks_diff(time.ticks_us(), t0)
    gc.enable()
    out = {}
    for name, t in zip(names, times):
        s = sorted(t)
        out[name] = {"median_us": s[ticks // 2], "mean_us": sum(t) / ticks}
    print(json.dumps({"cells": N, "kernels": KERNELS, "stages": out}))


{"lock": mode_lock, "bench": mode_bench, "kernels": mode_kernels, "stages": mode_stages}[MODE]()
