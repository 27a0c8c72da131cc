# Runs under MicroPython: the MCP2515 driver against the chip model
# (host_tools/mp/chips/mcp2515.py), the inverter CAN profiles and the CAN
# service.
#   micropython mp_can_check.py FIRMWARE_DIR CHIPS_DIR CASE [ARG]
# Prints one JSON line of what happened.
import sys
import json
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
CASE = sys.argv[3]
ARG = sys.argv[4] if len(sys.argv) > 4 else ""

from bms.drivers import mcp2515 as D  # noqa: E402
from chips.bench import Bench  # noqa: E402
from chips.mcp2515 import MCP2515Model, CanBus, Peer  # noqa: E402

OUT = {}


class Rig:
    def __init__(self, crystal=8000000, driver_crystal=None, peer=True, int_pin=True):
        self.b = Bench()
        self.clock = self.b.clock
        self.intp = self.b.pin(21) if int_pin else None
        if self.intp is not None:
            self.intp.v = 1
        self.chip = MCP2515Model(self.clock, crystal, self.intp)
        self.bus = CanBus(500000)
        self.bus.attach(self.chip)
        self.peer = Peer()
        if peer:
            self.bus.attach(self.peer)
        spi = self.b.spi(1)
        spi.chain = self.chip
        cs = self.b.pin(17)
        cs.listener = self.chip.cs
        self.drv = D.MCP2515(spi, cs, self.intp, driver_crystal or crystal)

    def ms(self, n):
        self.clock.sleep_ms(n)
        self.chip.advance()


def case_bringup():
    out = {}
    for xtal in (8000000, 16000000):
        r = Rig(xtal)
        c = r.chip
        out_x = {"reset_canstat": c._reg_read(0x0E), "reset_canctrl": c._reg_read(0x0F)}
        out_x["start"] = r.drv.start()
        out_x["mode"] = r.drv.mode()
        out_x["bitrate"] = c.bitrate()
        out_x["cnf"] = [c.r[0x2A], c.r[0x29], c.r[0x28]]
        # CNF writes outside configuration mode are refused
        r.drv.write(D.CNF1, 0x3F)
        out_x["cnf1_after_normal_write"] = r.drv.read(D.CNF1)
        out_x["refused"] = c.refused
        out[str(xtal)] = out_x
    # a driver set for 16 MHz on an 8 MHz board: 250 kbit/s, no frame gets through
    r = Rig(8000000, 16000000)
    out["wrong_xtal_start"] = r.drv.start()
    out["wrong_xtal_bitrate"] = r.chip.bitrate()
    buf = bytearray(8)
    out["wrong_xtal_send"] = r.drv.send(0x351, buf, 8)
    r.ms(10)
    out["wrong_xtal_peer_rx"] = len(r.peer.rx)
    out["wrong_xtal_state"] = r.drv.state()
    # a mode change that shows late in CANSTAT is polled for, a bounded number of times
    r = Rig()
    r.chip.mode_delay = 3
    out["late_mode"] = r.drv.start()
    r = Rig()
    r.chip.mode_delay = 50
    out["never_mode"] = r.drv.start()
    out["never_mode_reads"] = r.chip.transactions
    # skipping configuration: a driver that writes CNF in normal mode gets nothing
    r = Rig()
    r.drv.write(D.CANCTRL, 0x07)  # REQOP normal, no bit timing
    r.drv.write(D.CNF1, 0x00)
    r.drv.write(D.CNF2, 0x90)
    out["skip_config_refused"] = r.chip.refused
    OUT.update(out)


def case_traffic():
    r = Rig()
    d = r.drv
    OUT["start"] = d.start()
    data = bytearray(b"\x14\x02\x74\x0e\x74\x0e\xcc\x01")
    OUT["send"] = [d.send(0x351, data, 8), d.send(0x355, data, 4), d.send(0x356, data, 6), d.send(0x35E, data, 8)]
    r.ms(5)
    OUT["peer_rx"] = [[i, list(b)] for _, i, b in r.peer.rx]
    OUT["tec_after_ok"] = [d.state(), d.tec]
    # receive: two buffers; a third frame before a read overflows
    OUT["pending_empty"] = d.pending()
    t = r.clock.ticks_us()
    r.peer.queue(t, 0x305, b"\x00" * 8)
    r.peer.queue(t, 0x307, b"\x12\x34\x56\x78VIC\x00")
    r.ms(1)
    OUT["int_low"] = r.intp.v == 0
    got = []
    buf = bytearray(8)
    while d.pending():
        i = d.recv(buf)
        got.append([i, d.rx_dlc, list(buf[:d.rx_dlc])])
    OUT["recv"] = got
    OUT["recv_empty"] = d.recv(buf)
    t = r.clock.ticks_us()
    for k in range(5):
        r.peer.queue(t, 0x305 + k, bytes((k,)))
    r.ms(2)
    OUT["lost"] = r.chip.lost
    OUT["state_overflow"] = d.state()
    OUT["rx_overflows"] = d.rx_overflows
    OUT["eflg_cleared"] = r.chip.r[0x2D] & 0xC0
    n = 0
    while d.recv(buf) >= 0:
        n += 1
    OUT["kept"] = n


def case_errors():
    # no ACK (nobody else on the bus): TEC to 128, error passive, never bus-off
    r = Rig(peer=False)
    d = r.drv
    d.start()
    data = bytearray(8)
    sends = [d.send(0x351, data, 8) for _ in range(4)]
    OUT["noack_sends"] = sends
    hist = []
    for _ in range(5):
        r.ms(2)
        hist.append([d.state(), d.tec])
    OUT["noack"] = hist
    r.ms(1000)
    OUT["noack_1s"] = [d.state(), d.tec, r.chip.tx_errors > 100]
    # a peer appears: the pending frames go out, TEC falls by one each
    r.bus.attach(r.peer)
    r.ms(2)
    OUT["peer_back"] = [d.state(), d.tec, len(r.peer.rx)]
    # stuck bus: bit errors, bus-off at TEC > 255, then the chip's own
    # recovery after 128 x 11 recessive bits once the bus is free
    r = Rig()
    d = r.drv
    d.start()
    r.bus.stuck = True
    d.send(0x351, data, 8)
    hist = []
    for _ in range(3):
        r.ms(1)
        hist.append([d.state(), d.tec])
    OUT["stuck"] = hist
    OUT["busoff_send"] = [d.send(0x351, data, 8), d.send(0x351, data, 8), d.send(0x351, data, 8)]
    r.ms(100)
    OUT["still_off"] = d.state()
    r.bus.stuck = False
    r.ms(2)
    OUT["before_recovery"] = d.state()
    r.ms(2)
    OUT["recovered"] = [d.state(), d.tec]
    r.ms(5)
    OUT["sent_after"] = len(r.peer.rx)


class PackHal:
    """A pack the test drives: cell voltages (mV, per cell), temperatures
    (0.1 degC), current (mA); contactor feedback follows the outputs."""

    def __init__(self, cfg, n, m):
        self.cfg = cfg
        self.n, self.m, self.k = n, m, 0
        self.mv = [3300] * n
        self.t_dc = 250
        self.ma = 0

    def _raw_t(self, dc):
        raw, tab = self.cfg.ntc_raw, self.cfg.ntc_dc
        for i in range(len(raw) - 1):
            a, b = tab[i], tab[i + 1]
            if (a - dc) * (b - dc) <= 0 and a != b:
                return raw[i] + (raw[i + 1] - raw[i]) * (dc - a) // (b - a)
        return raw[0]

    def read(self, st):
        from bms.state import IN_ENABLE
        self.k += 1
        for i in range(self.n):
            st.raw_cells[i] = self.mv[i] * 10 + (self.k + i) % 3
        r = self._raw_t(self.t_dc)
        for i in range(self.m):
            st.raw_temps[i] = r + (self.k + i) % 2
        st.raw_cool[0] = st.raw_cool[1] = self._raw_t(250)
        st.raw_current = self.ma // 10
        st.raw_pack = sum(st.raw_cells) // 100
        st.raw_bus = st.raw_pack
        st.inputs = IN_ENABLE | (st.outputs & 7)
        st.fresh = 1

    def write(self, st):
        pass

    def safe(self):
        pass


def snapshot(app, svc):
    st = app.state
    from bms import signals as S
    return {"ccl_ma": st.ccl_ma, "dcl_ma": st.dcl_ma, "soc_cpct": st.soc_cpct, "capacity_mah": st.capacity_mah,
            "capacity_learned": st.capacity_learned, "usable_mah": st.usable_mah, "valid_scans": st.valid_scans,
            "sig": {S.NAMES[i]: st.sig[i] for i in range(S.N_SIGNALS)}, "n_cells": st.n_cells,
            "faults": [F.NAMES[i] for i in range(F.N_FAULTS) if st.fault_active[i]]}


def case_frames():
    """The app, 100 ms ticks, the CAN service after each tick, the inverter
    peer on the bus; a charge with one cell running ahead, a hot pack, a
    discharge, a silent inverter. Every service call that queued frames is
    recorded with the state it read; the frames as the peer received them."""
    from bms.config import Config
    from bms.app import App
    from bms.can_service import CanService, settings
    from bms import faults as F2  # noqa: F401
    global F
    from bms import faults as F
    prof = ARG or "pylontech"
    n = 16
    cfg = Config({"cells": n, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"})
    r = Rig()
    hal = PackHal(cfg, n, 4)
    app = App(cfg, hal)
    app.boot(False)
    s = settings({"profile": prof}, cfg)
    svc = CanService(app, r.drv, s, 0, r.clock)
    calls = []
    warn_at = None
    keepalive_until = 100000
    t = 0
    for k in range(1400):  # 140 s
        now = t
        # the plan
        if 20000 <= now < 80000:
            hal.ma = 40000
            for i in range(n):
                hal.mv[i] = 3300 + (now - 20000) * 170 // 60000
            hal.mv[3] += (now - 20000) * 150 // 60000  # one cell runs ahead
        elif 80000 <= now < 100000:
            hal.ma = 0
            hal.t_dc = 250 + (now - 80000) * 320 // 20000  # to 57 degC
        elif now >= 100000:
            hal.t_dc = 300
            hal.ma = -60000
            for i in range(n):
                hal.mv[i] = 3250
        if now % 1000 == 0 and now < keepalive_until:
            r.peer.queue(r.clock.ticks_us(), 0x305, bytes(8))
        if 50000 <= now < 53000 and now % 1000 != 0:  # garbage: unknown ids, a keep-alive of the wrong length
            t0 = r.clock.ticks_us()
            r.peer.queue(t0 + 10000, 0x100 + k % 50, bytes((k & 0xFF,)) * (k % 9))
            r.peer.queue(t0 + 20000, 0x305, bytes(k % 8))
        app.tick(now)
        before = svc.sent
        svc.service(now)
        if svc.sent != before:  # one line per call that queued frames (the heap cannot hold them all)
            print("C " + json.dumps({"t_us": r.clock.ticks_us(), "state": snapshot(app, svc)}))
        ws = F.index("INVERTER_SILENT")
        if warn_at is None and app.state.fault_active[ws]:
            warn_at = now
        t += 100
        r.clock.sleep_ms(100)
        r.chip.advance()
        for tt, i, b in r.peer.rx:
            print("F " + json.dumps([tt, i, list(b)]))
        r.peer.rx.clear()
    OUT["profile"] = prof
    OUT["counters"] = {k: getattr(svc, k) for k in ("sent", "tx_full", "tx_late", "passive", "bus_off", "restarts",
                                                   "rx_ok", "rx_unknown", "rx_bad_dlc", "rx_floods", "silences")}
    OUT["silent_warn_ms"] = None if warn_at is None else warn_at - (keepalive_until - 1000)  # from the last keep-alive
    OUT["settings"] = s
    OUT["rx_overflows"] = r.drv.rx_overflows
    OUT["internal_error"] = app.state.internal_error
    OUT["name"] = list(svc.name)


class LockChip:
    """A stand-in MCP2515 that allocates nothing, so heap_lock() sees only
    the driver and the service: registers in a bytearray, READ STATUS and
    the RX buffer set by the test."""

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
                if b == 0xC0:
                    self.r[0x0E] = 0x80
                elif b == 0x90 or b == 0x94:
                    self.addr = 0x61
            elif self.n == 1:
                self.addr = b
            elif self.ins == 0x02:
                self._w(self.addr, b)
                self.addr += 1
            elif self.ins == 0x05 and self.n == 3 and self.addr == 0x0F:
                self._w(0x0F, b)
            self.n += 1

    def _w(self, a, v):
        self.r[a] = v
        if a == 0x0F:
            self.r[0x0E] = v & 0xE0

    def miso(self, buf):
        for i in range(len(buf)):
            if self.ins == 0xA0:
                buf[i] = self.status
            else:
                buf[i] = self.r[self.addr & 0x7F]
                self.addr += 1


def case_lock():
    """service() under micropython.heap_lock(): sending, a full TX buffer,
    keep-alives and garbage received, error passive, bus-off, a restart."""
    import micropython
    from bms.config import Config
    from bms.app import App
    from bms.can_service import CanService, settings
    b = Bench()
    chip = LockChip()
    spi = b.spi(1)
    spi.chain = chip
    cs = b.pin(17)
    cs.listener = chip.cs
    irq = b.pin(21)
    irq.v = 1
    drv = D.MCP2515(spi, cs, irq, 8000000)
    cfg = Config({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"})
    hal = PackHal(cfg, 16, 4)
    app = App(cfg, hal)
    out = {}
    for prof in ("pylontech", "victron", "sma_lv"):
        svc = CanService(app, drv, settings({"profile": prof}, cfg), 0, b.clock)
        errors = 0
        now = 0
        for k in range(600):
            app.tick(now)
            phase = k // 100
            chip.status = 0x54 if phase == 1 else 0  # all three TXREQ set: TX full
            chip.r[0x2D] = 0x10 if phase == 2 else (0x20 if phase == 3 else 0)  # passive, bus-off
            if k % 3 == 0:  # a frame waiting: INT low, RX0IF
                irq.v = 0
                chip.status |= 0x01
                chip.r[0x61] = 0x60 if k % 2 else 0x20  # 0x305 or an unknown 0x101
                chip.r[0x62] = 0xA0 if k % 2 else 0x20
                chip.r[0x65] = 3 if k % 9 == 3 else 8  # a keep-alive of the wrong length now and then
            else:
                irq.v = 1
            micropython.heap_lock()
            try:
                svc.service(now)
            except MemoryError:
                errors += 1
            micropython.heap_unlock()
            now += 100
        out[prof] = {"alloc_errors": errors, "sent": svc.sent, "tx_full": svc.tx_full, "passive": svc.passive,
                     "bus_off": svc.bus_off, "restarts": svc.restarts, "rx_ok": svc.rx_ok, "rx_unknown": svc.rx_unknown,
                     "rx_bad_dlc": svc.rx_bad_dlc, "rx_floods": svc.rx_floods}
    micropython.heap_lock()  # the control: an allocation under the lock is caught
    try:
        bytearray(8)
        out["control"] = 0
    except MemoryError:
        out["control"] = 1
    micropython.heap_unlock()
    OUT.update(out)


def case_config_errors():
    from bms.config import Config
    from bms.can_service import settings, CanConfigError
    cfg = Config({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"})
    for key, d in (("profile", {"profile": "growatt"}), ("victron_name", {"profile": "victron", "name": "PYLON"}),
                   ("period", {"period_ms": 50}), ("cvl", {"cvl_cell_mv": 3700}), ("crystal", {"crystal_hz": 12000000})):
        try:
            settings(d, cfg)
            OUT[key] = "accepted"
        except CanConfigError as e:
            OUT[key] = str(e)
    OUT["ok"] = settings({}, cfg)["profile"]


globals()["case_" + CASE]()
print(json.dumps(OUT))
