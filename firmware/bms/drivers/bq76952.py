# TI BQ76952 (3-16S monitor and protector) over I2C with CRC-8.
#
# Sources: TI "BQ76952 Technical Reference Manual" (SLUUBY2) and the
# BQ76952 datasheet (SLUSE13). Written from the engineer's knowledge of
# these documents (section names below); the subcommand register addresses
# and checksum were cross-checked against public driver code. Verify the
# marked points on a real part before the first power-up.
#
# - TRM "I2C Communications Subsystem": 7-bit address 0x08 (8-bit 0x10 /
#   0x11), no CRC from the factory: bq76952_setup.py switches CRC on at
#   every boot, and everything below assumes it. With CRC enabled every data byte is followed by a CRC-8
#   (x^8 + x^2 + x + 1, init 0). For the first byte of a read the CRC covers
#   address+W, the command, address+R and the byte; for the first byte of a
#   write address+W, the command and the byte; every further byte's CRC
#   covers that byte alone. The command address auto-increments over a
#   block read (verify: this driver reads the cell block 0x14..0x3B and the
#   temperature block 0x68..0x7B in one transaction each).
# - TRM "Direct Commands": 0x02..0x07 Safety Alert/Status A, B, C (one byte
#   each); 0x14 + 2*i Cell i+1 voltage (int16, mV); 0x34 Stack, 0x36 PACK
#   pin, 0x38 LD pin voltage (int16, "userV": 10 mV with the default
#   DA Configuration USER_VOLTS_CV = 1); 0x3A CC2 current (int16, "userA":
#   this board family sets USER_AMPS to 10 mA so 1C of a 280 Ah pack fits);
#   0x68 internal, 0x6A CFETOFF, 0x6C DFETOFF, 0x6E ALERT, 0x70 TS1,
#   0x72 TS2, 0x74 TS3, 0x76 HDQ, 0x78 DCHG, 0x7A DDSG temperatures (int16,
#   0.1 K); 0x7F FET Status (bit 0 CHG, 1 PCHG, 2 DSG, 3 PDSG).
# - TRM "Subcommands": write the 16-bit subcommand little-endian to
#   0x3E/0x3F; data goes to the transfer buffer 0x40..0x5F; for a write with
#   data, then write 0x60 = ~(sum of subcommand and data bytes) & 0xFF and
#   0x61 = data length + 4. For a read, poll 0x3E/0x3F until they read back
#   the subcommand (0xFF while busy), then 0x61 gives the length and 0x60
#   the checksum of the response in 0x40...
#   Subcommands used: 0x0001 DEVICE_NUMBER (0x7695), 0x0083 CB_ACTIVE_CELLS
#   (R/W, 16-bit mask of balanced cells), 0x0095 ALL_FETS_OFF,
#   0x0096 ALL_FETS_ON.
from array import array
from micropython import const
from bms.drivers import ERR_BUS, ERR_CRC, ERR_CHIP

ADDR = const(0x08)
SAFETY_BLOCK = const(0x02)  # Safety Alert A .. Safety Status C, 6 bytes
CELL_BLOCK = const(0x14)  # 16 cells, stack, PACK, LD, CC2: 40 bytes
TEMP_BLOCK = const(0x68)  # 10 temperatures: 20 bytes
FET_STATUS = const(0x7F)
SUBCMD = const(0x3E)
XFER = const(0x40)
XFER_SUM = const(0x60)

DEVICE_NUMBER = const(0x0001)
CB_ACTIVE_CELLS = const(0x0083)
ALL_FETS_OFF = const(0x0095)
ALL_FETS_ON = const(0x0096)

# Temperature sources in the order of the 0x68.. block.
TEMP_NAMES = ("INT", "CFETOFF", "DFETOFF", "ALERT", "TS1", "TS2", "TS3", "HDQ", "DCHG", "DDSG")

FET_CHG = const(1)
FET_PCHG = const(2)
FET_DSG = const(4)
FET_PDSG = const(8)


def xfer_sum(cmd, data, n):
    """The transfer buffer's checksum (TRM SLUUBY2B, "Subcommands"): the
    complement of the byte sum of the subcommand and its n data bytes."""
    s = (cmd & 0xFF) + (cmd >> 8)
    for i in range(n):
        s += data[i]
    return (~s) & 0xFF


def _s16(b, o):
    v = b[o] | (b[o + 2] << 8)  # interleaved with CRC bytes: data at 2*i
    return v - 65536 if v >= 32768 else v


class BQ76952:
    """i2c: machine.I2C (readfrom_mem_into / writeto_mem). kernels: the
    firmware's kernels module (crc8_smbus). clock: sleep_us (time)."""

    def __init__(self, i2c, kernels, clock, addr=ADDR, busy_polls=10, busy_wait_us=200):
        self.i2c = i2c
        self.crc = kernels.crc8_smbus
        self.clock = clock
        self.addr = addr
        self.busy_polls = busy_polls
        self.busy_wait_us = busy_wait_us
        self.hdr = bytearray(4)
        self.rx_safety = bytearray(12)
        self.rx_cells = bytearray(80)
        self.rx_temps = bytearray(40)
        self.rx_fet = bytearray(2)
        self.rx_sub = bytearray(4)  # 0x3E/0x3F echo, or 0x60/0x61
        self.rx_data = bytearray(64)  # up to 32 bytes of response data
        self.tx2 = bytearray(4)
        self.tx4 = bytearray(8)
        self.bal = bytearray(2)
        self.tx_bal = bytearray(4)
        # Results of the last good read.
        self.cell_mv = array("h", [0] * 16)
        self.stack_10mv = 0
        self.pack_10mv = 0
        self.ld_10mv = 0
        self.cc2 = 0  # userA (10 mA on these boards), + = charge
        self.temp_dk = array("h", [0] * 10)  # 0.1 K, TEMP_NAMES order
        self.safety = bytearray(6)  # alert A, status A, alert B, status B, alert C, status C
        self.fets = 0
        self.errors = 0

    # -- reads ---------------------------------------------------------------
    def _read(self, reg, buf, nbytes):
        """Block read of nbytes data bytes (buf holds 2*nbytes: data, CRC)."""
        try:
            self.i2c.readfrom_mem_into(self.addr, reg, buf)
        except OSError:
            self.errors += 1
            return ERR_BUS
        h = self.hdr
        a = self.addr << 1
        h[0] = a
        h[1] = reg
        h[2] = a | 1
        h[3] = buf[0]
        crc = self.crc
        if crc(h, 0, 4) != buf[1]:
            self.errors += 1
            return ERR_CRC
        i = 2
        end = 2 * nbytes
        while i < end:
            if crc(buf, i, 1) != buf[i + 1]:
                self.errors += 1
                return ERR_CRC
            i += 2
        return 0

    def read_cells(self):
        """Cells, stack, PACK, LD and CC2 in one block; 0 or an ERR_*."""
        b = self.rx_cells
        e = self._read(CELL_BLOCK, b, 40)
        if e:
            return e
        mv = self.cell_mv
        for i in range(16):
            mv[i] = _s16(b, 4 * i)
        self.stack_10mv = _s16(b, 64)
        self.pack_10mv = _s16(b, 68)
        self.ld_10mv = _s16(b, 72)
        self.cc2 = _s16(b, 76)
        return 0

    def read_temps(self):
        b = self.rx_temps
        e = self._read(TEMP_BLOCK, b, 20)
        if e:
            return e
        t = self.temp_dk
        for i in range(10):
            t[i] = _s16(b, 4 * i)
        return 0

    def read_status(self):
        """Safety alert/status A-C and the FET status (the chip's own
        protection, read back for diagnosis)."""
        b = self.rx_safety
        e = self._read(SAFETY_BLOCK, b, 6)
        if e:
            return e
        s = self.safety
        for i in range(6):
            s[i] = b[2 * i]
        e = self._read(FET_STATUS, self.rx_fet, 1)
        if e:
            return e
        self.fets = self.rx_fet[0]
        return 0

    def scan(self):
        e = self.read_cells()
        if not e:
            e = self.read_temps()
        if not e:
            e = self.read_status()
        return e

    # -- writes and subcommands ---------------------------------------------
    def _write(self, reg, data, n, tx):
        """Writes n bytes of data with their CRCs (tx holds 2*n)."""
        a = self.addr << 1
        h = self.hdr
        h[0] = a
        h[1] = reg
        h[2] = data[0]
        tx[0] = data[0]
        tx[1] = self.crc(h, 0, 3)
        for i in range(1, n):
            tx[2 * i] = data[i]
            tx[2 * i + 1] = self.crc(data, i, 1)
        try:
            self.i2c.writeto_mem(self.addr, reg, tx)
        except OSError:
            self.errors += 1
            return ERR_BUS
        return 0

    def subcommand(self, cmd):
        """A subcommand without data (e.g. ALL_FETS_OFF)."""
        d = self.rx_sub
        d[0] = cmd & 0xFF
        d[1] = cmd >> 8
        return self._write(SUBCMD, d, 2, self.tx2)

    def subcommand_write(self, cmd, data, n, tx):
        """Subcommand with n data bytes (tx: a preallocated 2*n buffer):
        command, data, then checksum and length, which make the chip act."""
        d = self.rx_sub
        d[0] = cmd & 0xFF
        d[1] = cmd >> 8
        e = self._write(SUBCMD, d, 2, self.tx2)
        if e:
            return e
        e = self._write(XFER, data, n, tx)
        if e:
            return e
        d[0] = xfer_sum(cmd, data, n)
        d[1] = n + 4
        return self._write(XFER_SUM, d, 2, self.tx2)

    def subcommand_read(self, cmd, out):
        """Subcommand with a response: returns its length in bytes (>= 0)
        copied into out, or -ERR_*. Start-up and diagnosis only."""
        d = self.rx_sub
        d[0] = cmd & 0xFF
        d[1] = cmd >> 8
        e = self._write(SUBCMD, d, 2, self.tx2)
        if e:
            return -e
        lo = cmd & 0xFF
        hi = cmd >> 8
        # The chip answers 0xFF on 0x3E/0x3F until the response is ready.
        for _ in range(self.busy_polls):
            e = self._read(SUBCMD, self.rx_sub, 2)
            if e:
                return -e
            if self.rx_sub[0] == lo and self.rx_sub[2] == hi:
                break
            self.clock.sleep_us(self.busy_wait_us)
        else:
            return -ERR_CHIP
        e = self._read(XFER_SUM, self.rx_sub, 2)
        if e:
            return -e
        chk = self.rx_sub[0]
        n = self.rx_sub[2] - 4
        if n < 0 or n > 32:
            return -ERR_CHIP
        buf = self.rx_data
        e = self._read(XFER, buf, 32)  # the whole buffer: no slice object
        if e:
            return -e
        for i in range(n):
            out[i] = buf[2 * i]
        if xfer_sum(cmd, out, n) != chk:
            self.errors += 1
            return -ERR_CHIP
        return n

    def set_balance(self, mask):
        """Host-controlled balancing: mask bit i = cell input VC(i+1) of the
        chip (after the board's cell mapping)."""
        d = self.bal
        d[0] = mask & 0xFF
        d[1] = (mask >> 8) & 0xFF
        return self.subcommand_write(CB_ACTIVE_CELLS, d, 2, self.tx_bal)

    def fets_off(self):
        return self.subcommand(ALL_FETS_OFF)

    def fets_on(self):
        return self.subcommand(ALL_FETS_ON)

    def device_number(self):
        n = self.subcommand_read(DEVICE_NUMBER, self.rx_data)
        if n < 2:
            return -1
        return self.rx_data[0] | (self.rx_data[1] << 8)
