# Software-in-the-loop HAL: one sensor frame in and one actuator frame out
# per tick over a local stream to the host plant, in lock-step: a pair of
# pipes the host hands over as file descriptors ("fd:R,W", the simulator),
# one connected socket ("fd:N"), or TCP ("HOST:PORT", the virtual board).
#
# Wire format (little-endian), shared with host_tools/frames.py. At boot
# the firmware first sends one line of JSON (hello: version, fault table,
# settings) or {"error": ...} when its configuration is rejected.
# sensor frame  (host -> firmware), 12 + 2*cells + 2*temps + 32 bytes:
#   u16 magic 0xB5A1, u8 version, u8 flags (1 = front end silent: only the
#   inputs byte is valid; 2 = raise an exception in this tick, a test hook;
#   4 = clear latched faults, the host's stand-in for the console `clear`),
#   u32 seq, u32 now_ms (< 2**30),
#   u16 cell[cells] (0.1 mV counts), u16 temp[temps] (NTC ADC counts),
#   i32 current (10 mA counts, + = charge), u32 pack (10 mV counts),
#   u32 bus (10 mV counts), u16 coolant_in, u16 coolant_out (NTC counts),
#   u16 flow (pulse counter), u8 inputs (contactor feedback bits 0..2,
#   enable input bit 3), u8 pad,
#   u8 command (0 none, 1 grid start, 2 grid cancel: the host's stand-in for
#   the console), u8 pad, u16 pad, i32 arg a, i32 arg b (grid start: W, s)
# actuator frame (firmware -> host), 150 + ceil(cells/8) bytes:
#   u16 magic 0xB5A2, u8 version, u8 flags (1 = internal error),
#   u32 seq (echo), u8 outputs, u8 contactor state, u16 pump duty (per mille),
#   u8 heater, u8 balance count, i32 ccl_ma, i32 dcl_ma, i16 soc (0.01 %),
#   u16 pad, u8 faults[8] (bit per fault-table row),
#   u8 new events (0..8), u8 pad, u16 pad, 8 x event (i32 now_ms, u16 code,
#   u16 arg, i32 value), i32 grid export current asked (mA), i32 grid
#   energy of the running/last event (mWh), i32 capacity estimate (mAh),
#   u8 grid active, u8 grid reason, u8 last SOC sync kind, u8 pad,
#   u8 balance[ceil(cells/8)]
from struct import pack_into
from micropython import const
from bms.faults import N_FAULTS
from bms.state import EVENTS

SENSOR_MAGIC = const(0xB5A1)
ACT_MAGIC = const(0xB5A2)
VERSION = const(2)
FAULT_BYTES = const(8)
HDR = const(12)
EV_OFF = const(34)
EV_SLOTS = const(8)
GRID_OFF = const(134)
ACT_FIXED = const(150)
SENSOR_TAIL = const(32)  # bytes after the temperatures


def _u16(b, o):
    return b[o] | (b[o + 1] << 8)


def _i32(b, o):
    # saturated to a 32-bit port's small int (31 bits): a frame's value
    # past +-2**30 must not become a big int in the tick
    hi = b[o + 2] | (b[o + 3] << 8)
    if hi >= 32768:
        hi -= 65536
    if hi >= 16384:
        return 0x3FFFFFFF
    if hi < -16384:
        return -0x3FFFFFFF - 1
    return (hi << 16) | b[o] | (b[o + 1] << 8)


def open_link(spec):
    """The plant's link from its address: "fd:R,W" (two pipes inherited as
    descriptors: R to read frames from, W to write them to), "fd:N" (a
    connected socket inherited as descriptor N) or "HOST:PORT" (TCP)."""
    if spec.startswith("fd:"):
        fds = spec[3:].split(",")
        if len(fds) == 2:
            return PipeLink(int(fds[0]), int(fds[1]))
        # A file object on the descriptor: readinto() and write() are the
        # same read()/write() calls a socket object makes.
        return open(int(spec[3:]), "r+b")
    host, port = spec.rsplit(":", 1)
    return connect(host, int(port))


class PipeLink:
    """Two pipes as one stream. A pipe's round trip costs the kernel about
    60 % of an AF_UNIX socket's (host_tools/bench.py, transport figures):
    in the simulator that is a tenth of the wall time per tick.
    readinto and write are the files' own bound methods, so a tick pays no
    extra call for the pairing."""

    def __init__(self, rfd, wfd):
        self.r = open(rfd, "rb")
        self.w = open(wfd, "wb")
        self.readinto = self.r.readinto
        self.write = self.w.write

    def close(self):
        self.w.close()
        self.r.close()


def connect(host, port):
    """Opens the TCP connection to the host plant (done by boot, not at
    import: a port without sockets replays frames from a file instead)."""
    import socket
    s = socket.socket()
    s.connect(socket.getaddrinfo(host, port)[0][-1])
    try:
        s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: lock-step frames
    except OSError:
        pass
    return s


def send_hello(stream, obj):
    """Boot message to the host: one line of JSON, streamed (json.dump
    writes piece by piece, so no large string is built on a small heap)."""
    import json
    out = stream.w if isinstance(stream, PipeLink) else stream  # json.dump needs a real stream
    json.dump(obj, out)
    out.write(b"\n")


class SimHal:
    """stream: a connected socket (or any object with readinto/write)."""

    def __init__(self, cfg, kernels, stream):
        self.k = kernels
        self.n = cfg.cells
        self.m = cfg.temps
        self.rx = bytearray(HDR + 2 * self.n + 2 * self.m + SENSOR_TAIL)
        self.tmp = bytearray(len(self.rx))
        self.tx = bytearray(ACT_FIXED + (self.n + 7) // 8)
        self.seq = 0
        self.now_ms = 0
        self.ev_sent = 0
        self.sock = stream
        if N_FAULTS > 8 * FAULT_BYTES:
            raise ValueError("fault table larger than the frame's fault field")

    def hello(self, obj):
        send_hello(self.sock, obj)

    def receive(self):
        # Blocks for the next sensor frame; False when the host has gone.
        rx = self.rx
        want = len(rx)
        got = self.sock.readinto(rx)
        if not got:
            return False
        tmp = self.tmp
        while got < want:
            # Rare split frame: read the rest into a spare buffer and copy,
            # so no slice object is allocated.
            r = self.sock.readinto(tmp, want - got)
            if not r:
                return False
            for i in range(r):
                rx[got + i] = tmp[i]
            got += r
        if _u16(rx, 0) != SENSOR_MAGIC or rx[2] != VERSION:
            raise ValueError("bad sensor frame")
        self.seq = _i32(rx, 4)
        self.now_ms = _i32(rx, 8)
        return True

    def read(self, st):
        rx = self.rx
        flags = rx[3]
        o = HDR + 2 * self.n + 2 * self.m
        st.inputs = rx[o + 18]
        if rx[o + 20]:
            st.cmd = rx[o + 20]
            st.cmd_a = _i32(rx, o + 24)
            st.cmd_b = _i32(rx, o + 28)
        if flags & 4:
            st.clear_req = 1
        if flags & 2:
            raise RuntimeError("fault injection: exception in the tick")
        if flags & 1:
            st.fresh = 0  # front end silent this tick
            return
        n = self.n
        m = self.m
        k = self.k
        k.unpack_u16(rx, HDR, st.raw_cells, n)
        o = HDR + 2 * n
        k.unpack_u16(rx, o, st.raw_temps, m)
        o += 2 * m
        st.raw_current = _i32(rx, o)
        st.raw_pack = _i32(rx, o + 4)
        st.raw_bus = _i32(rx, o + 8)
        k.unpack_u16(rx, o + 12, st.raw_cool, 2)
        st.raw_tach = _u16(rx, o + 16)
        st.fresh = 1

    def write(self, st):
        tx = self.tx
        # struct.pack_into: one call for the fields that took a byte store
        # and shifts each (a third of the time; it allocates nothing:
        # tests/test_heap_lock.py locks the heap around whole ticks)
        pack_into("<HBBiBBHBBiihH", tx, 0, ACT_MAGIC, VERSION, 1 if st.internal_error else 0, self.seq, st.outputs,
                  st.contactor_state, st.pump_duty_pm, st.heater_on,
                  st.balance_count if st.balance_count < 255 else 255, st.ccl_ma, st.dcl_ma, st.soc_cpct, 0)
        self.k.pack_bits(st.fault_active, N_FAULTS, tx, 26)
        self._events(st, tx)
        pack_into("<iiiBBBB", tx, GRID_OFF, st.grid_ma, st.grid_mwh_event, st.capacity_mah, st.grid_active,
                  st.grid_reason, st.soc_sync, 0)
        self.k.pack_bits(st.balance_mask, self.n, tx, ACT_FIXED)
        self.sock.write(tx)

    def _events(self, st, tx):
        # The events recorded since the last frame, oldest first, at most
        # EV_SLOTS per frame (the rest follow in the next frames).
        new = (st.ev_total - self.ev_sent) & 0x3FFFFFFF
        if new > EVENTS:
            self.ev_sent = (st.ev_total - EVENTS) & 0x3FFFFFFF  # overwritten in the ring
            new = EVENTS
        k = new if new < EV_SLOTS else EV_SLOTS
        tx[EV_OFF] = k
        ev = st.events
        i = (st.ev_head - new) % EVENTS
        o = EV_OFF + 4
        for _ in range(k):
            j = i * 4
            pack_into("<iHHi", tx, o, ev[j], ev[j + 1], ev[j + 2], ev[j + 3])
            o += 12
            i = (i + 1) % EVENTS
        self.ev_sent = (self.ev_sent + k) & 0x3FFFFFFF

    def safe(self):
        pass  # outputs go out in the next write(), which always follows


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
    from bms import VERSION
    from bms import faults as F
    from bms import signals as S
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
