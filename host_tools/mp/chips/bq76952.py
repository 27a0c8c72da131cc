# A register-level model of the TI BQ76952 on I2C with CRC (see the driver,
# firmware/bms/drivers/bq76952.py, for the document sections): direct
# commands served from an image of little-endian registers, each byte
# followed by its CRC-8; writes checked byte by byte (a bad CRC discards the
# write, as the chip ignores it); subcommands through 0x3E/0x3F, the
# transfer buffer at 0x40 and checksum/length at 0x60/0x61, with one busy
# poll (0xFF) before a response is ready. Plant values go in with set_*;
# open sense wires show the chip's signature (the cell reads ~0 V, the one
# above the sum of both); a cell's thermistor pin open reads far below
# -40 degC. Injected faults: corrupt (flip a bit in the next n reads).
import math

ADDR = 0x08


def crc8(data, crc=0):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class BQ76952Model:
    def __init__(self, addr=ADDR):
        self.addr = addr
        self.img = bytearray(0x80)
        self.cell_mv = [3300] * 16
        self.open_wire = -1  # VC input (1..16) whose sense wire is open
        self.cb_mask = 0
        self.fets_allowed = True
        self.fet_status = 0
        self.safety = bytearray(6)
        self.sub = 0  # subcommand in progress
        self.sub_busy = 0
        self.sub_data = bytearray(32)
        self.sub_len = 0
        self.xfer = bytearray(32)
        self.corrupt = 0
        self.crc_errors = 0
        self.writes = 0
        self.subcommands = []
        self._put16(0x12, 0)
        self.set_temps_dk([2982] * 10)

    def _put16(self, reg, v):
        v &= 0xFFFF
        self.img[reg] = v & 0xFF
        self.img[reg + 1] = v >> 8

    # -- plant side ---------------------------------------------------------------
    def set_cells_mv(self, mv):
        for i in range(16):
            self.cell_mv[i] = mv[i] if i < len(mv) else 0
        self._cells()

    def _cells(self):
        v = list(self.cell_mv)
        ow = self.open_wire
        if 1 <= ow <= 16:
            # TRM "Cell Open-Wire": the check current drains the open input;
            # the cell reads ~0 and the cell above reads both.
            if ow < 16:
                v[ow] = v[ow] + v[ow - 1]
            v[ow - 1] = 0
        for i in range(16):
            self._put16(0x14 + 2 * i, v[i])

    def set_stack(self, stack_10mv, pack_10mv, ld_10mv, cc2):
        self._put16(0x34, stack_10mv)
        self._put16(0x36, pack_10mv)
        self._put16(0x38, ld_10mv)
        self._put16(0x3A, cc2)

    def set_temps_dk(self, dk):
        for i in range(10):
            self._put16(0x68 + 2 * i, dk[i])

    def set_ts_counts(self, pin_index, counts, adc_max=4095, r25=10000.0, beta=3435.0, pullup=10000.0):
        """A thermistor pin from the divider's ADC counts: the chip's own
        conversion to 0.1 K (Beta model; an open pin reads -70 degC)."""
        if counts >= adc_max:
            dk = 2032
        elif counts <= 0:
            dk = 4232
        else:
            r = pullup * counts / (adc_max - counts)
            tk = 1 / (1 / 298.15 + math.log(r / r25) / beta)
            dk = int(round(tk * 10))
        self._put16(0x68 + 2 * pin_index, dk)

    # -- bus side -----------------------------------------------------------------
    def _byte(self, reg):
        if reg == 0x3E or reg == 0x3F:
            if self.sub_busy:
                return 0xFF
            return (self.sub >> (8 * (reg - 0x3E))) & 0xFF
        if 0x40 <= reg < 0x60:
            return self.sub_data[reg - 0x40]
        if reg == 0x60:
            s = (self.sub & 0xFF) + (self.sub >> 8) + sum(self.sub_data[: self.sub_len])
            return (~s) & 0xFF
        if reg == 0x61:
            return self.sub_len + 4
        if 0x02 <= reg <= 0x07:
            return self.safety[reg - 2]
        if reg == 0x7F:
            return self.fet_status
        if reg < 0x80:
            return self.img[reg]
        return 0

    def read(self, mem, buf):
        n = len(buf) // 2
        a = self.addr << 1
        for i in range(n):
            b = self._byte((mem + i) & 0xFF)
            buf[2 * i] = b
            buf[2 * i + 1] = crc8((a, mem, a | 1, b)) if i == 0 else crc8((b,))
        if (mem == 0x3E) and self.sub_busy:
            self.sub_busy -= 1
        if self.corrupt:
            self.corrupt -= 1
            buf[0] ^= 0x10

    def write(self, mem, buf):
        self.writes += 1
        n = len(buf) // 2
        a = self.addr << 1
        data = bytearray(n)
        for i in range(n):
            b = buf[2 * i]
            want = crc8((a, mem, b)) if i == 0 else crc8((b,))
            if buf[2 * i + 1] != want:
                self.crc_errors += 1
                return  # the whole write is discarded
            data[i] = b
        if mem == 0x3E and n >= 2:
            self._subcommand(data[0] | (data[1] << 8))
        elif 0x40 <= mem < 0x60:
            for i in range(n):
                self.xfer[mem - 0x40 + i] = data[i]
        elif mem == 0x60 and n >= 2:
            ln = data[1] - 4
            s = (self.sub & 0xFF) + (self.sub >> 8) + sum(self.xfer[:ln])
            if ln < 0 or (~s) & 0xFF != data[0]:
                self.crc_errors += 1  # checksum wrong: the chip ignores it
                return
            if self.sub == 0x0083 and ln == 2:
                self.cb_mask = self.xfer[0] | (self.xfer[1] << 8)
                self._log("CB_ACTIVE_CELLS", self.cb_mask)

    def _log(self, name, arg):
        # the last few subcommands acted on (tests look at them)
        if len(self.subcommands) >= 32:
            self.subcommands.pop(0)
        self.subcommands.append((name, arg))

    def _subcommand(self, cmd):
        self.sub = cmd
        self.sub_busy = 1
        self.sub_len = 0
        if cmd == 0x0001:  # DEVICE_NUMBER
            self.sub_data[0] = 0x95
            self.sub_data[1] = 0x76
            self.sub_len = 2
        elif cmd == 0x0083:  # CB_ACTIVE_CELLS read
            self.sub_data[0] = self.cb_mask & 0xFF
            self.sub_data[1] = self.cb_mask >> 8
            self.sub_len = 2
        elif cmd == 0x0095:  # ALL_FETS_OFF
            self.fets_allowed = False
            self.fet_status = 0
            self._log("ALL_FETS_OFF", 0)
        elif cmd == 0x0096:  # ALL_FETS_ON
            self.fets_allowed = True
            self.fet_status = 0x05  # CHG and DSG on
            self._log("ALL_FETS_ON", 0)
