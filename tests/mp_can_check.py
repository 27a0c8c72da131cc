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


globals()["case_" + CASE]()
print(json.dumps(OUT))
