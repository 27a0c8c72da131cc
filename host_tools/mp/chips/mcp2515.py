# A register-level model of the Microchip MCP2515 CAN controller on SPI,
# with a CAN bus and a peer node (an inverter) on it. Document:
# DS20001801 (MCP2515 datasheet; section names as in the driver,
# firmware/bms/drivers/mcp2515.py); fault confinement from ISO 11898-1.
#
# Rules modelled:
# - reset state (section 11 register map, "value on POR/RST"): CANCTRL
#   0x87 (REQOP configuration, CLKEN, CLKPRE /8), CANSTAT 0x80, TEC, REC,
#   CNF1-3, CANINTE, CANINTF, EFLG, TXBnCTRL, RXBnCTRL 0. Registers whose
#   reset value is "x" (filters, masks, buffers) start with a junk pattern,
#   so a driver that relies on them fails (the pattern is the model's).
# - configuration mode (section 10): CNF1-3, TXRTSCTRL, filters and masks
#   are written only there; a write elsewhere is ignored and counted in
#   `refused`. No frame is sent or received in configuration mode. A mode
#   request shows in CANSTAT.OPMOD after `mode_delay` reads (0 by default:
#   at once; the real chip waits for bus idle, UNVERIFIED how long).
# - SPI instructions (section 12): RESET, READ, WRITE (auto-increment),
#   BIT MODIFY (on the bit-modifiable registers only; elsewhere the mask is
#   forced to 0xFF, a plain write), LOAD TX BUFFER (6 start addresses),
#   RTS, READ RX BUFFER (RXnIF cleared when CS goes high), READ STATUS,
#   RX STATUS. A write into a TX buffer whose TXREQ is set is refused
#   (datasheet: TXREQ must be clear before writing; what the chip does then
#   is UNVERIFIED).
# - bit timing (section 5): the bit rate from CNF1-3 and the crystal; a
#   node at another rate than the bus sees only errors (simplified: each
#   attempt is a bit error for it, the other nodes never see its frames).
# - transmission (section 3): TXREQ buffers in priority order (TXP, then
#   the higher buffer number), one frame time each (47 + 8 x DLC bits, no
#   stuffing counted); success needs an ACK from another node at the bus
#   rate; TXnIF on success, TXERR on an error, automatic retransmission.
# - reception (section 4): RXB0, rolling over into RXB1 when BUKT is set,
#   RXM = 11 takes any frame, else the masks and filters (standard ids);
#   both full -> RX0OVR/RX1OVR and the frame is lost (`lost`).
# - fault confinement (ISO 11898-1 rules; datasheet section 6 "Error
#   Modes"): a transmit error adds 8 to TEC, a good frame sent subtracts 1;
#   a missing ACK while error passive adds nothing (ISO's exception: one
#   node alone on a bus stays error passive at TEC 128, it does not go bus
#   off); a receive error adds 1 to REC, a good frame received subtracts 1
#   (from above 127 back to 120). TEC or REC >= 96 warning (EWARN, TXWAR,
#   RXWAR), > 127 error passive (TXEP, RXEP), TEC > 255 bus-off (TXBO; TEC
#   reads 255 then: UNVERIFIED). The chip leaves bus-off by itself after
#   128 occurrences of 11 consecutive recessive bits (checked: DS21801E
#   section 6, Figure 6-1 "Error Modes State Diagram"; a stuck bus never
#   gives them). TEC 1Ch and REC 1Dh read-only, 0 at POR (Registers 6-1, 6-2).
# - bus faults: bus.stuck (a shorted or stuck-dominant bus: every bit a
#   bit error), no peer / peer.ack False (no ACK).
# - INT pin: low while (CANINTF & CANINTE) != 0.
MODE_CONFIG = 0x80
CONFIG_ONLY = set(range(0x00, 0x0C)) | {0x0D} | set(range(0x10, 0x1C)) | set(range(0x20, 0x2B))
BIT_MODIFIABLE = {0x0C, 0x0D, 0x0F, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x30, 0x40, 0x50, 0x60, 0x70}
LOAD_TX_ADDR = {0x40: 0x31, 0x41: 0x36, 0x42: 0x41, 0x43: 0x46, 0x44: 0x51, 0x45: 0x56}
READ_RX_ADDR = {0x90: 0x61, 0x92: 0x66, 0x94: 0x71, 0x96: 0x76}


class CanBus:
    """The wire: nodes at a bit rate, frames queued by peers."""

    def __init__(self, bitrate=500000):
        self.bitrate = bitrate
        self.nodes = []
        self.stuck = False  # shorted / stuck dominant: no frame gets through
        self.queue = []  # (t_us, id, bytes) from peers, oldest first
        self.frames = 0  # frames that made it onto the wire

    def attach(self, node):
        self.nodes.append(node)
        node.bus = self

    def bit_us(self):
        return 1000000 / self.bitrate

    def acked(self, sender, rate):
        if self.stuck or rate != self.bitrate:
            return False
        for n in self.nodes:
            if n is not sender and n.acks(rate):
                return True
        return False

    def deliver(self, sender, t_us, can_id, data):
        self.frames += 1
        for n in self.nodes:
            if n is not sender:
                n.on_frame(t_us, can_id, data)


class Peer:
    """Another node (an inverter): ACKs at the bus rate, records what it
    receives, sends what it is given (queue())."""

    def __init__(self, ack=True):
        self.ack = ack
        self.rx = []  # (t_us, id, bytes)
        self.bus = None
        self.on_rx = None  # optional callback (t_us, id, bytes)

    def acks(self, rate):
        return self.ack

    def on_frame(self, t_us, can_id, data):
        if self.rx is not None:  # None: forward only (long runs)
            self.rx.append((t_us, can_id, data))
        if self.on_rx is not None:
            self.on_rx(t_us, can_id, data)

    def queue(self, t_us, can_id, data):
        self.bus.queue.append((t_us, can_id, bytes(data)))


class MCP2515Model:
    def __init__(self, clock, crystal_hz=8000000, int_pin=None):
        self.clock = clock
        self.crystal_hz = crystal_hz
        self.int_pin = int_pin
        self.bus = None
        self.mode_delay = 0
        self.transactions = 0
        self.bytes = 0
        self.refused = 0
        self.lost = 0
        self.sent = 0  # frames that left with an ACK
        self.received = 0
        self.tx_errors = 0
        self.reset()

    # -- reset state -----------------------------------------------------------------
    def reset(self):
        r = bytearray(128)
        for i in range(128):
            r[i] = (i * 73 + 41) & 0xFF  # "x" registers: junk, not zeros
        for a in (0x0C, 0x0D, 0x0E, 0x1C, 0x1D, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x30, 0x40, 0x50, 0x60, 0x70):
            r[a] = 0
        r[0x0F] = 0x87
        self.r = r
        self.opmod = MODE_CONFIG
        self.req_reads = 0
        self.tec = 0
        self.rec = 0
        self.busoff = False
        self.recover_at = None
        self.t_us = self.clock.ticks_us()
        self.free_at = self.t_us
        self.ins = None
        self.addr = 0
        self.n = 0
        self.rx_read = -1
        self.req_t = [0, 0, 0]  # when each buffer's TXREQ was set
        self._flags()

    # -- bit timing --------------------------------------------------------------------
    def bitrate(self):
        c1, c2, c3 = self.r[0x2A], self.r[0x29], self.r[0x28]
        brp = c1 & 0x3F
        prseg = (c2 & 7) + 1
        ps1 = ((c2 >> 3) & 7) + 1
        ps2 = (c3 & 7) + 1 if c2 & 0x80 else max(ps1, 2)
        tq = 1 + prseg + ps1 + ps2
        return self.crystal_hz // (2 * (brp + 1) * tq) if tq * (2 * (brp + 1)) else 0

    def acks(self, rate):
        return self.opmod in (0x00,) and not self.busoff and rate == self.bitrate()

    # -- registers -----------------------------------------------------------------------
    def _reg_read(self, a):
        a &= 0x7F
        if a & 0x0F == 0x0E:  # CANSTAT, mirrored in every row
            return self.opmod | (self.r[0x0E] & 0x1F)
        if a & 0x0F == 0x0F:
            return self.r[0x0F]
        if a == 0x1C:
            return 255 if self.busoff else min(self.tec, 255)
        if a == 0x1D:
            return min(self.rec, 255)
        return self.r[a]

    def _reg_write(self, a, v):
        a &= 0x7F
        if a & 0x0F == 0x0F:
            a = 0x0F
        if a in CONFIG_ONLY and self.opmod != MODE_CONFIG:
            self.refused += 1
            return
        if a & 0x0F == 0x0E or a in (0x1C, 0x1D):
            return  # read-only
        if 0x31 <= a <= 0x5D and (a & 0x0F) != 0 and self.r[a & 0xF0] & 0x08:
            self.refused += 1  # the buffer is pending
            return
        if a == 0x2D:  # EFLG: only the overflow bits, and only cleared
            v = (self.r[a] & v & 0xC0) | (self.r[a] & 0x3F)
        if a in (0x30, 0x40, 0x50):
            v = (v & 0x0B) | (self.r[a] & 0x70)  # ABTF, MLOA, TXERR read-only
        self.r[a] = v
        if a == 0x0F:
            self.req_reads = self.mode_delay
            if self.mode_delay == 0:
                self._apply_mode()
        if a == 0x2C or a == 0x2B:
            self._irq()

    def _apply_mode(self):
        req = self.r[0x0F] & 0xE0
        if req != self.opmod:
            self.opmod = req
            self.free_at = max(self.free_at, self.clock.ticks_us())

    def _flags(self):
        e = self.r[0x2D] & 0xC0
        t, r = self.tec, self.rec
        if t >= 96 or r >= 96:
            e |= 0x01
        if r >= 96:
            e |= 0x02
        if t >= 96:
            e |= 0x04
        if r >= 128:
            e |= 0x08
        if t >= 128:
            e |= 0x10
        if self.busoff:
            e |= 0x20 | 0x10
        if e & 0x3F != self.r[0x2D] & 0x3F:
            self.r[0x2C] |= 0x20  # ERRIF
        self.r[0x2D] = e
        self._irq()

    def _irq(self):
        if self.int_pin is not None:
            self.int_pin.v = 0 if self.r[0x2C] & self.r[0x2B] else 1

    def status(self):
        f = self.r[0x2C]
        s = f & 0x03
        s |= (self.r[0x30] & 0x08) >> 1 | (f & 0x04) << 1
        s |= (self.r[0x40] & 0x08) << 1 | (f & 0x08) << 2
        s |= (self.r[0x50] & 0x08) << 3 | (f & 0x10) << 3
        return s

    def rx_status(self):
        f = self.r[0x2C] & 3
        s = f << 6
        b = 0x60 if f & 1 else (0x70 if f & 2 else -1)
        if b >= 0:
            if self.r[b + 2] & 0x08:
                s |= 0x10
            if self.r[b + 5] & 0x40:
                s |= 0x08
        return s

    # -- SPI (section 12) ---------------------------------------------------------------
    def cs(self, level):
        if level == 0:
            self.transactions += 1
            self.advance()
            self.ins = None
            self.n = 0
            self.rx_read = -1
        else:
            if self.rx_read >= 0:
                self.r[0x2C] &= ~(1 << self.rx_read)
                self._irq()
            self.ins = None

    def mosi(self, buf):
        for b in buf:
            self.bytes += 1
            self._byte_in(b)

    def miso(self, buf):
        for i in range(len(buf)):
            self.bytes += 1
            buf[i] = self._byte_out()

    def _byte_in(self, b):
        n = self.n
        self.n += 1
        if n == 0:
            self.ins = b
            if b == 0xC0:
                self.reset()
                self.ins = None
            elif b & 0xF8 == 0x80 and b != 0x80:
                for k in range(3):
                    if b & (1 << k) and self.opmod != MODE_CONFIG:
                        self.req_t[k] = self.clock.ticks_us()
                        self.r[0x30 + 0x10 * k] |= 0x08
                        self.r[0x30 + 0x10 * k] &= ~0x70
            elif b in LOAD_TX_ADDR:
                self.addr = LOAD_TX_ADDR[b]
            elif b in READ_RX_ADDR:
                self.addr = READ_RX_ADDR[b]
                self.rx_read = 0 if b < 0x94 else 1
            return
        i = self.ins
        if i in (0x02, 0x03, 0x05) and n == 1:
            self.addr = b & 0x7F
            return
        if i == 0x02 or i in LOAD_TX_ADDR:
            self._reg_write(self.addr, b)
            self.addr = (self.addr + 1) & 0x7F
        elif i == 0x05:
            if n == 2:
                self.mask = b if self.addr in BIT_MODIFIABLE else 0xFF
            elif n == 3:
                old = self._reg_read(self.addr)
                self._reg_write(self.addr, (old & ~self.mask) | (b & self.mask))

    def _byte_out(self):
        i = self.ins
        if i == 0x03 or i in READ_RX_ADDR:
            a = self.addr
            v = self._reg_read(a)
            if a & 0x0F == 0x0E and self.req_reads:
                self.req_reads -= 1
                v = self.opmod | (self.r[0x0E] & 0x1F)
                if self.req_reads == 0:
                    self._apply_mode()
            self.addr = (a + 1) & 0x7F
            return v
        if i == 0xA0:
            return self.status()
        if i == 0xB0:
            return self.rx_status()
        return 0xFF

    # -- the bus ---------------------------------------------------------------------------
    def frame_us(self, dlc):
        return (47 + 8 * dlc) * 1000000 // (self.bitrate() or 1)

    def advance(self, now_us=None):
        """Runs the bus from the last call to now (the clock's time)."""
        now = self.clock.ticks_us() if now_us is None else now_us
        bus = self.bus
        if bus is None:
            return
        bit = bus.bit_us()
        rate = self.bitrate()
        if bus.stuck:
            self.recover_at = None
        for _ in range(4096):  # bounded per SPI transaction
            if self.busoff:
                if self.recover_at is None and not bus.stuck:
                    # the bus is seen free from the last look at it on
                    self.recover_at = max(self.free_at, self.t_us) + int(128 * 11 * bit)
                if self.recover_at is not None and self.recover_at <= now:
                    self.busoff = False
                    self.tec = self.rec = 0
                    self.free_at = self.recover_at
                    self.recover_at = None
                    self._flags()
                    continue
            # the earliest of: a peer's frame, our next attempt
            pf = bus.queue[0] if bus.queue else None
            tx = self._next_tx() if (self.opmod in (0x00, 0x40) and not self.busoff) else -1
            t_tx = max(self.free_at, self.req_t[tx]) if tx >= 0 else None
            t_pf = pf[0] if pf is not None else None
            if (t_tx is None or t_tx > now) and (t_pf is None or t_pf > now):
                break
            if t_pf is not None and t_pf <= now and (t_tx is None or t_pf <= t_tx):
                bus.queue.pop(0)
                t = max(t_pf, self.free_at)
                self.free_at = t + (47 + 8 * len(pf[2])) * bit
                if bus.stuck:
                    continue
                bus.frames += 1
                self.on_frame(t, pf[1], pf[2])
                continue
            self._attempt(tx, t_tx, rate, bit)
        self.t_us = now

    def _next_tx(self):
        best = -1
        bp = -1
        for k in (2, 1, 0):  # equal priority: the higher buffer number first
            c = self.r[0x30 + 0x10 * k]
            if c & 0x08 and (c & 3) > bp:
                best = k
                bp = c & 3
        return best

    def _attempt(self, k, t, rate, bit):
        base = 0x30 + 0x10 * k
        r = self.r
        sid = (r[base + 1] << 3) | (r[base + 2] >> 5)
        dlc = r[base + 5] & 0x0F
        n = min(dlc, 8)
        data = bytes(r[base + 6:base + 6 + n])
        bus = self.bus
        if self.opmod == 0x40:  # loopback: to our own receive buffers only
            self.free_at = t + (47 + 8 * n) * bit
            self._done(k)
            self.on_frame(t, sid, data)
            return
        if bus.stuck or rate != bus.bitrate:
            # bit error on the first dominant bit; error flag + delimiter
            self.free_at = t + 20 * bit
            self._tx_error(k, True)
            return
        if not bus.acked(self, rate):
            self.free_at = t + (47 + 8 * n + 20) * bit
            self._tx_error(k, False)
            return
        self.free_at = t + (47 + 8 * n) * bit
        self._done(k)
        bus.deliver(self, t, sid, data)

    def _done(self, k):
        base = 0x30 + 0x10 * k
        self.r[base] &= ~0x08
        self.r[0x2C] |= 0x04 << k
        self.sent += 1
        if self.tec > 0:
            self.tec -= 1
        self._flags()

    def _tx_error(self, k, bit_error):
        self.tx_errors += 1
        self.r[0x30 + 0x10 * k] |= 0x10  # TXERR
        self.r[0x2C] |= 0x80  # MERRF
        if not bit_error and self.tec >= 128:
            pass  # ACK error while error passive: TEC unchanged (ISO 11898-1)
        else:
            self.tec += 8
        if self.tec > 255:
            self.busoff = True
            self.recover_at = None
        self._flags()

    def on_frame(self, t_us, can_id, data):
        if self.opmod not in (0x00, 0x60, 0x40) or self.busoff:
            return
        if self.bus is not None and self.bitrate() != self.bus.bitrate and self.opmod != 0x40:
            self.rec += 1
            self._flags()
            return
        self.received += 1
        if self.rec > 127:
            self.rec = 120
        elif self.rec > 0:
            self.rec -= 1
        r = self.r
        f = r[0x2C]
        a0 = self._accept(0, can_id)
        a1 = self._accept(1, can_id)
        roll = r[0x60] & 0x04
        if a0 and not f & 1:
            self._store(0x60, can_id, data)
            r[0x2C] |= 1
        elif ((a0 and roll) or (not a0 and a1)) and not f & 2:
            self._store(0x70, can_id, data)
            r[0x2C] |= 2
        elif a0 or a1:
            self.lost += 1
            r[0x2D] |= 0x80 if (roll or not a0) else 0x40
        self._flags()

    def _accept(self, n, can_id):
        r = self.r
        ctrl = r[0x60 + 0x10 * n]
        if ctrl & 0x60 == 0x60:
            return True
        m = 0x20 if n == 0 else 0x24
        mask = (r[m] << 3) | (r[m + 1] >> 5)
        filt = (0x00, 0x04) if n == 0 else (0x08, 0x10, 0x14, 0x18)
        for fa in filt:
            f = (r[fa] << 3) | (r[fa + 1] >> 5)
            if (can_id ^ f) & mask == 0:
                return True
        return False

    def _store(self, base, can_id, data):
        r = self.r
        r[base + 1] = (can_id >> 3) & 0xFF
        r[base + 2] = (can_id & 7) << 5
        r[base + 3] = 0
        r[base + 4] = 0
        r[base + 5] = len(data) & 0x0F
        for i in range(8):
            r[base + 6 + i] = data[i] if i < len(data) else 0


class Absent:
    """An SPI bus with no chip on it: MISO floats high (reads 0xFF)."""

    def cs(self, level):
        pass

    def mosi(self, buf):
        pass

    def miso(self, buf):
        for i in range(len(buf)):
            buf[i] = 0xFF


def attach(bench, can, fitted=True):
    """Wires an MCP2515 model (or, fitted=False, nothing) to the bench
    pins and SPI bus named by a board config's `can` section; returns
    (chip, bus, peer) or (None, None, None)."""
    spi = bench.spi(can["spi"]["id"])
    cs = bench.pin(can["cs"])
    if not fitted:
        spi.chain = Absent()
        return None, None, None
    irq = bench.pin(can["int"]) if "int" in can else None
    if irq is not None:
        irq.v = 1
    chip = MCP2515Model(bench.clock, can["crystal_hz"], irq)
    bus = CanBus(500000)
    bus.attach(chip)
    peer = Peer()
    bus.attach(peer)
    spi.chain = chip
    cs.listener = chip.cs
    return chip, bus, peer
