# Microchip MCP2515 stand-alone CAN controller on SPI (datasheet
# DS20001801; section names below, numbers as in revision J, from memory).
#
# The CAN driver interface every CAN driver offers (a native TWAI or
# machine.CAN driver can be added beside this one with the same methods):
#   start() -> 0 or an ERR_* code: from the chip's reset state to normal
#       mode at 500 kbit/s, confirmed by reading it back;
#   send(can_id, data, dlc) -> 0 queued, TX_FULL (all three buffers busy),
#       TX_BUS_OFF; never waits for the frame to leave;
#   recv(data) -> the 11-bit id of the oldest received frame (its length in
#       .rx_dlc, its bytes in data[0:8]) or -1; never waits;
#   state() -> STATE_* from the error counters (reads TEC, REC, EFLG);
#   .tec, .rec, .eflg after state().
# Nothing here allocates after the constructor: every SPI transfer uses a
# buffer made there.
from micropython import const
from bms.drivers import ERR_BUS, ERR_CHIP, ERR_CONFIG

# SPI instruction set (section 12, Table 12-1).
I_RESET = const(0xC0)
I_READ = const(0x03)
I_WRITE = const(0x02)
I_BIT_MODIFY = const(0x05)
I_LOAD_TX = const(0x40)  # | 0x00 TXB0, 0x02 TXB1, 0x04 TXB2 (from SIDH)
I_RTS = const(0x80)  # | 1 << n
I_READ_RX = const(0x90)  # | 0x00 RXB0, 0x04 RXB1 (from SIDH); CS high clears RXnIF
I_READ_STATUS = const(0xA0)
I_RX_STATUS = const(0xB0)

# Registers (section 11, register map).
CANSTAT = const(0x0E)
CANCTRL = const(0x0F)
TEC = const(0x1C)
REC = const(0x1D)
CNF3 = const(0x28)
CNF2 = const(0x29)
CNF1 = const(0x2A)
CANINTE = const(0x2B)
CANINTF = const(0x2C)
EFLG = const(0x2D)
TXB0CTRL = const(0x30)
RXB0CTRL = const(0x60)
RXB1CTRL = const(0x70)

# Operating modes, CANCTRL.REQOP / CANSTAT.OPMOD bits 7:5 (section 10).
MODE_NORMAL = const(0x00)
MODE_SLEEP = const(0x20)
MODE_LOOPBACK = const(0x40)
MODE_LISTEN = const(0x60)
MODE_CONFIG = const(0x80)

# EFLG bits (section 6, error flags register).
EF_RX1OVR = const(0x80)
EF_RX0OVR = const(0x40)
EF_TXBO = const(0x20)
EF_TXEP = const(0x10)
EF_RXEP = const(0x08)
EF_EWARN = const(0x01)

# CAN error states (ISO 11898-1 fault confinement; datasheet section 6).
STATE_ACTIVE = const(0)
STATE_WARNING = const(1)  # a counter at 96 or more
STATE_PASSIVE = const(2)  # a counter above 127
STATE_BUS_OFF = const(3)  # TEC above 255: the chip sends nothing
STATE_ERROR = const(4)  # the chip did not answer (SPI)

TX_OK = const(0)
TX_FULL = const(1)
TX_BUS_OFF = const(2)
TX_BUS_ERR = const(3)

# Bit timing for 500 kbit/s (section 5, "Bit Timing Configuration
# Registers"): 1 sync + PRSEG + PS1 + PS2 time quanta, TQ = 2 (BRP + 1) / Fosc.
#   16 MHz: BRP 0 (TQ 125 ns), 16 TQ = 1 + 1 + 7 + 7, SJW 1, 3 samples
#           (CNF1 0x00, CNF2 0xF0 = BTLMODE | SAM | PS1 7, CNF3 0x86 = PS2 7)
#    8 MHz: BRP 0 (TQ 250 ns), 8 TQ = 1 + 1 + 3 + 3, SJW 1, 1 sample
#           (CNF1 0x00, CNF2 0x90 = BTLMODE | PS1 3, CNF3 0x82 = PS2 3)
# Both keep the datasheet's rules PS2 > SJW and PRSEG + PS1 >= PS2; the
# same values as autowp/arduino-mcp2515 (reference file).
CNF_500K = {8000000: (0x00, 0x90, 0x82), 16000000: (0x00, 0xF0, 0x86)}

# How many CANSTAT reads a mode change may take before it counts as failed
# (the chip changes mode once the bus is idle: 11 recessive bits, 22 us).
MODE_POLLS = const(8)


class MCP2515:
    def __init__(self, spi, cs, int_pin=None, crystal_hz=8000000):
        if crystal_hz not in CNF_500K:
            raise ValueError("mcp2515: crystal %r Hz not supported (8000000 or 16000000)" % (crystal_hz,))
        self.spi = spi
        self.cs = cs
        self.irq = int_pin  # INT is low while an enabled CANINTF flag is set
        self.cnf = CNF_500K[crystal_hz]
        cs.value(1)
        self._b1 = bytearray(1)
        self._b2 = bytearray(2)
        self._b3 = bytearray(3)
        self._b4 = bytearray(4)
        self._r1 = bytearray(1)
        self._tx = bytearray(14)  # LOAD TX + SIDH SIDL EID8 EID0 DLC D0..D7
        self._rx = bytearray(13)  # SIDH SIDL EID8 EID0 DLC D0..D7
        self._rxi = (bytearray((I_READ_RX,)), bytearray((I_READ_RX | 0x04,)))
        self._status = bytearray((I_READ_STATUS,))
        self._rts = (bytearray((I_RTS | 1,)), bytearray((I_RTS | 2,)), bytearray((I_RTS | 4,)))
        self._reset = bytearray((I_RESET,))
        self.rx_dlc = 0
        self.tec = 0
        self.rec = 0
        self.eflg = 0
        self.rx_overflows = 0  # EFLG RXnOVR seen (frames the chip dropped)
        self.spi_errors = 0

    # -- SPI primitives (section 12) -----------------------------------------------
    def _xfer(self, out, into):
        c = self.cs
        c.value(0)
        try:
            self.spi.write(out)
            if into is not None:
                self.spi.readinto(into, 0)
        finally:
            c.value(1)

    def read(self, addr):
        b = self._b2
        b[0] = I_READ
        b[1] = addr
        self._xfer(b, self._r1)
        return self._r1[0]

    def write(self, addr, value):
        b = self._b3
        b[0] = I_WRITE
        b[1] = addr
        b[2] = value
        self._xfer(b, None)

    def modify(self, addr, mask, value):
        b = self._b4
        b[0] = I_BIT_MODIFY
        b[1] = addr
        b[2] = mask
        b[3] = value
        self._xfer(b, None)

    def read_status(self):
        self._xfer(self._status, self._r1)
        return self._r1[0]

    # -- modes -------------------------------------------------------------------------
    def set_mode(self, mode):
        """Requests a mode and confirms it in CANSTAT.OPMOD (section 10):
        0, or ERR_CHIP when the chip has not changed after MODE_POLLS reads."""
        self.modify(CANCTRL, 0xE0, mode)
        for _ in range(MODE_POLLS):
            if self.read(CANSTAT) & 0xE0 == mode:
                return 0
        return ERR_CHIP

    def mode(self):
        return self.read(CANSTAT) & 0xE0

    def start(self, mode=MODE_NORMAL):
        """Reset, bit timing, receive everything, then `mode` (section 10:
        CNF1-3, filters and masks are written only in configuration mode,
        which the chip enters on RESET). Every setting is read back."""
        try:
            self._xfer(self._reset, None)
            # RESET leaves the chip in configuration mode (CANSTAT 0x80)
            # after its oscillator start-up (128 Tosc): confirmed, not assumed.
            ok = 0
            for _ in range(MODE_POLLS):
                if self.read(CANSTAT) & 0xE0 == MODE_CONFIG:
                    ok = 1
                    break
            if not ok:
                return ERR_CHIP
            c1, c2, c3 = self.cnf
            self.write(CNF1, c1)
            self.write(CNF2, c2)
            self.write(CNF3, c3)
            # RXM = 11: masks and filters off, any frame; BUKT: RXB0 rolls
            # over into RXB1 when full (section 4, "Receive Buffers").
            self.write(RXB0CTRL, 0x64)
            self.write(RXB1CTRL, 0x60)
            self.write(CANINTE, 0x03)  # INT follows RX0IF | RX1IF only
            self.write(CANINTF, 0x00)
            if self.read(CNF1) != c1 or self.read(CNF2) != c2 or self.read(CNF3) != c3:
                return ERR_CONFIG
            if self.read(RXB0CTRL) & 0x64 != 0x64 or self.read(CANINTE) != 0x03:
                return ERR_CONFIG
            return self.set_mode(mode)
        except OSError:
            self.spi_errors += 1
            return ERR_BUS

    # -- frames --------------------------------------------------------------------
    def send(self, can_id, data, dlc):
        """Loads the first free TX buffer and requests its transmission
        (section 3). Standard 11-bit ids, data frames."""
        try:
            st = self.read_status()  # bit 2/4/6: TXB0/1/2 TXREQ (READ STATUS instruction, section 12)
            if st & 0x04 == 0:
                n = 0
            elif st & 0x10 == 0:
                n = 1
            elif st & 0x40 == 0:
                n = 2
            else:
                if self.read(EFLG) & EF_TXBO:
                    return TX_BUS_OFF
                return TX_FULL
            t = self._tx
            t[0] = I_LOAD_TX | (n << 1)
            t[1] = (can_id >> 3) & 0xFF
            t[2] = (can_id & 7) << 5
            t[3] = 0
            t[4] = 0
            t[5] = dlc & 0x0F
            for i in range(8):
                t[6 + i] = data[i] if i < dlc else 0
            self._xfer(t, None)
            self._xfer(self._rts[n], None)
            return TX_OK
        except OSError:
            self.spi_errors += 1
            return TX_BUS_ERR

    def pending(self):
        """1 when the INT pin (or, without one, READ STATUS) says a frame
        is waiting: the cheap check before recv()."""
        if self.irq is not None:
            return 1 if self.irq.value() == 0 else 0
        try:
            return 1 if self.read_status() & 0x03 else 0
        except OSError:
            self.spi_errors += 1
            return 0

    def recv(self, data):
        """The next received frame, RXB0 before RXB1: its id, or -1."""
        try:
            st = self.read_status()
            if st & 0x01:
                n = 0
            elif st & 0x02:
                n = 1
            else:
                return -1
            r = self._rx
            self._xfer(self._rxi[n], r)  # CS high clears RXnIF (READ RX BUFFER)
            dlc = r[4] & 0x0F
            self.rx_dlc = dlc
            for i in range(8):
                data[i] = r[5 + i]
            if r[1] & 0x08:  # IDE: an extended id; reported with bit 30 set
                return 0x40000000 | ((r[0] << 21) | ((r[1] & 0xE0) << 13) | ((r[1] & 3) << 16) | (r[2] << 8) | r[3])
            return (r[0] << 3) | (r[1] >> 5)
        except OSError:
            self.spi_errors += 1
            return -1

    def state(self):
        """Reads TEC, REC and EFLG (section 6, "Error Modes"); clears the
        receive-overflow flags it finds (counted in rx_overflows)."""
        try:
            b = self._b2
            b[0] = I_READ
            b[1] = TEC
            self._xfer(b, b)  # sent first, then overwritten by TEC, REC (consecutive addresses)
            self.tec = self._b2[0]
            self.rec = self._b2[1]
            ef = self.read(EFLG)
            self.eflg = ef
            if ef & (EF_RX0OVR | EF_RX1OVR):
                self.rx_overflows += 1
                self.modify(EFLG, EF_RX0OVR | EF_RX1OVR, 0)
        except OSError:
            self.spi_errors += 1
            return STATE_ERROR
        if ef & EF_TXBO:
            return STATE_BUS_OFF
        if ef & (EF_TXEP | EF_RXEP):
            return STATE_PASSIVE
        if ef & EF_EWARN:
            return STATE_WARNING
        return STATE_ACTIVE

    def abort(self):
        """Aborts every pending transmission (CANCTRL.ABAT, section 3)."""
        try:
            self.modify(CANCTRL, 0x10, 0x10)
            self.modify(TXB0CTRL, 0x08, 0)
            self.modify(TXB0CTRL + 0x10, 0x08, 0)
            self.modify(TXB0CTRL + 0x20, 0x08, 0)
            self.modify(CANCTRL, 0x10, 0)
        except OSError:
            self.spi_errors += 1
