# ADI LTC6811-1 (12 cells) / LTC6813-1 (18 cells) daisy chain over SPI
# (isoSPI through an LTC6820 on these boards) with PEC-15.
#
# Sources: the LTC6811-1 and LTC6813-1 datasheets (Analog Devices), from the
# engineer's knowledge of them (section names below); command PECs were
# cross-checked against public driver code (RDCVA = 00 04 07 C2). Verify the
# conversion times and the sum-of-cells scale on a real part.
# - "Serial Interface Overview" / "Daisy-Chain Communication": a command is
#   2 bytes + PEC-15 (2 bytes). A read returns 6 data bytes + PEC per
#   device, the device nearest the host first; in a write the data for the
#   device farthest from the host goes out first.
# - "Waking up the Serial Interface": after t_IDLE (~4.3 ms) the isoSPI
#   port idles and after the watchdog time t_SLEEP (~2 s) the core sleeps
#   and the configuration (DCC bits included) resets. A CS-low pulse per
#   device, each followed by t_WAKE (<= 400 us), wakes the chain.
# - "Command codes" (Table 38 of the LTC6813-1): WRCFGA 0x001, WRCFGB 0x024,
#   RDCVA..F 0x004, 0x006, 0x008, 0x00A, 0x009, 0x00B, RDAUXA..D 0x00C,
#   0x00E, 0x00D, 0x00F, RDSTATA 0x010, ADCVSC 0x467 | MD << 7 | DCP << 4,
#   ADAX 0x460 | MD << 7 | CHG, ADOW 0x228 | MD << 7 | PUP << 6 | DCP << 4 | CH.
# - "Memory Map": cell and GPIO codes are little-endian 16-bit, 100 uV per
#   LSB (so a cell code is directly the firmware's 0.1 mV raw count);
#   status A holds SC, the sum of cells in units of 30 x 100 uV. CFGRA byte 0
#   GPIO5..1 pull-down off (bits 7..3), REFON (bit 2); byte 4 DCC8..1;
#   byte 5 DCTO (bits 7..4), DCC12..9. CFGRB (LTC6813) byte 0 DCC16..13
#   (bits 7..4), GPIO9..6 (bits 3..0); byte 1 DCC18 (bit 1), DCC17 (bit 0).
# - "Open Wire Check (ADOW Command)": run ADOW with the pull-up current at
#   least twice and read the cells (CELL_PU), then with the pull-down
#   current (CELL_PD). CELL_D(n) = CELL_PU(n) - CELL_PD(n) for n = 2..N:
#   below -400 mV, the wire C(n-1) is open. CELL_PU(1) = 0 means C0 is
#   open, CELL_PD(N) = 0 means C(N) is open.
#
# Constants and where they come from (DS6804 = LTC6804-1/-2 datasheet rev C,
# the pin-compatible predecessor of the LTC6811, whose page tables were the
# ones found in the index; DS6811/DS6813 = the LTC6811-1 / LTC6813-1
# datasheets, read only in parts; MEM = from the engineer's memory, not
# found in any indexed source: verify on a part):
#   conversion, 7 kHz mode (MD = 10, ADCOPT = 0), all cells: 2,335 us
#     (DS6804 Table 5, t6C); GPIO1-5 + 2nd reference (ADAX CHG = 000):
#     2,335 us (DS6804 Table 7); status group ADSTAT: 1,563 us (Table 9).
#     LTC6811 same (MEM: its tables repeat the LTC6804's). LTC6813: 18
#     cells ~3.1 ms, ADAX all 9 GPIOs + reference ~4.0 ms (MEM). ADCVSC
#     adds the sum-of-cells conversion to ADCV (MEM: ~+0.2 ms). The waits
#     below keep >= 10 % margin over these.
#   sum of cells: LTC6804/6811 SC x 20 x 100 uV (DS6804 "Sum of Cells
#     Measurement": 20:1 attenuation); LTC6813 SC x 30 x 100 uV (ADI's
#     Linduino DC2350 example prints SC*0.0001*30; DS6813 MEM).
#   cell/GPIO codes 100 uV per LSB, registers reset to 0xFFFF at power-up
#     and after a clear (DS6804 Table 46 "Memory Bit Descriptions").
#   DCTO = 0: discharge timer disabled (DS6804 Table 46); then the DCC bits
#     hold until the watchdog (t_SLEEP ~2 s, DS6804 "Watchdog and Software
#     Discharge Timer") resets the configuration, so a host that stops
#     writing stops the balancing.
#   DCP = 0 in ADCV/ADCVSC/ADOW: "Discharge Not Permitted" (DS6804 Table 35
#     "Command Bit Descriptions"): the chip pauses the DCC switches for the
#     conversion, so no measurement window is needed.
#   t_WAKE <= 400 us, t_READY 10 us, t_IDLE >= 4.3 ms (DS6811 electrical
#     characteristics, MEM; the same figures in a public mbed driver).
#   PEC-15: x^15+x^14+x^10+x^8+x^7+x^4+x^3+1 (0x4599), seed 16 (DS6804
#     "Packet Error Code"; RDCVA's PEC 0x07C2 matches, see above).
#   Command codes (DS6813 Table 38, MEM; RDCVA/ADCV PECs cross-checked).
from array import array
from micropython import const
from bms.drivers import ERR_BUS, ERR_CRC

MD_7KHZ = const(2)
OW_DELTA = const(-4000)  # -400 mV in 100 uV counts
# by channel count: (all-cells conversion us, all-GPIO conversion us, sum-of-cells factor)
TIMING = {12: (2335, 2335, 20), 18: (3100, 4000, 30)}

WRCFGA = const(0x001)
WRCFGB = const(0x024)
RDSTATA = const(0x010)
CV_CODES = (0x004, 0x006, 0x008, 0x00A, 0x009, 0x00B)
AUX_CODES = (0x00C, 0x00E, 0x00D, 0x00F)


class LTC681x:
    """spi: machine.SPI (write, readinto); cs: machine.Pin (value);
    kernels: pec15; clock: sleep_us. modules: devices in the chain;
    channels: 12 (LTC6811) or 18 (LTC6813); used: cell inputs wired per
    module (the lowest ones, C1..C(used))."""

    def __init__(self, spi, cs, kernels, clock, modules, channels=18, used=None,
                 conv_cell_us=None, conv_aux_us=None, wake_us=400, ow_repeats=2):
        if channels not in (12, 18):
            raise ValueError("ltc681x: channels must be 12 (LTC6811) or 18 (LTC6813), got %r" % channels)
        self.spi = spi
        self.cs = cs
        self.pec = kernels.pec15
        self.clock = clock
        self.m = modules
        self.c = channels
        self.used = channels if used is None else used
        t_cell, t_aux, self.sc_scale = TIMING[channels]
        # + 15 % and the ADCVSC sum-of-cells step (~0.2 ms, MEM)
        self.conv_cell_us = t_cell * 115 // 100 + 200 if conv_cell_us is None else conv_cell_us
        self.conv_aux_us = t_aux * 115 // 100 if conv_aux_us is None else conv_aux_us
        self.wake_us = wake_us
        self.ow_repeats = ow_repeats
        self.n_cv = channels // 3
        self.n_aux = 2 if channels == 12 else 4
        mk = self._cmd
        self.c_cv = tuple(mk(c) for c in CV_CODES[: self.n_cv])
        self.c_aux = tuple(mk(c) for c in AUX_CODES[: self.n_aux])
        self.c_stata = mk(RDSTATA)
        self.c_adcvsc = mk(0x467 | (MD_7KHZ << 7))
        self.c_adax = mk(0x460 | (MD_7KHZ << 7))
        self.c_adow_pu = mk(0x228 | (MD_7KHZ << 7) | (1 << 6))
        self.c_adow_pd = mk(0x228 | (MD_7KHZ << 7))
        self.c_adcv = mk(0x260 | (MD_7KHZ << 7))
        self.tx_cfg = bytearray(4 + 8 * modules)
        self.wake_byte = bytearray(b"\xff")
        self.rx = bytearray(8 * modules)
        self.cells = array("H", [0] * (modules * channels))  # 100 uV
        self.aux = array("H", [0] * (modules * 12))  # G1..G5, REF, G6..G9, -, -
        self.sc = array("H", [0] * modules)  # sum of cells, sc_scale x 100 uV
        self.stat = array("H", [0] * (3 * modules))  # status group A codes
        self.pu = array("H", [0] * (modules * channels))
        self.pd = array("H", [0] * (modules * channels))
        self.open_pins = bytearray(modules * (channels + 1))  # C0..C(channels) per module
        self.n_open = 0
        self.dcc = array("i", [0] * modules)  # bit i = DCC(i+1)
        self.errors = 0

    def _cmd(self, code):
        b = bytearray(4)
        b[0] = code >> 8
        b[1] = code & 0xFF
        p = self.pec(b, 0, 2)
        b[2] = p >> 8
        b[3] = p & 0xFF
        return b

    # -- transport -------------------------------------------------------------
    def wakeup(self):
        """One CS pulse per device so each wakes in turn (from SLEEP or IDLE)."""
        cs = self.cs
        for _ in range(self.m):
            cs.value(0)
            self.spi.write(self.wake_byte)
            cs.value(1)
            self.clock.sleep_us(self.wake_us)

    def wake_idle(self):
        """After a wait longer than t_IDLE the isoSPI port idles: one short
        CS pulse per device, then t_READY (10 us)."""
        cs = self.cs
        for _ in range(self.m):
            cs.value(0)
            self.spi.write(self.wake_byte)
            cs.value(1)
        self.clock.sleep_us(10)

    def _send(self, cmd):
        try:
            self.cs.value(0)
            self.spi.write(cmd)
        except OSError:
            self.cs.value(1)
            self.errors += 1
            return ERR_BUS
        self.cs.value(1)
        return 0

    def _read(self, cmd, dst, base, stride):
        """One register group from every device: 3 codes each into
        dst[module * stride + base + 0..2]."""
        rx = self.rx
        try:
            self.cs.value(0)
            self.spi.write(cmd)
            self.spi.readinto(rx, 0xFF)
        except OSError:
            self.cs.value(1)
            self.errors += 1
            return ERR_BUS
        self.cs.value(1)
        pec = self.pec
        for m in range(self.m):
            o = 8 * m
            if pec(rx, o, 6) != (rx[o + 6] << 8) | rx[o + 7]:
                self.errors += 1
                return ERR_CRC
            d = m * stride + base
            dst[d] = rx[o] | (rx[o + 1] << 8)
            dst[d + 1] = rx[o + 2] | (rx[o + 3] << 8)
            dst[d + 2] = rx[o + 4] | (rx[o + 5] << 8)
        return 0

    def _read_cells(self, dst):
        for g in range(self.n_cv):
            e = self._read(self.c_cv[g], dst, 3 * g, self.c)
            if e:
                return e
        return 0

    # -- measurement -------------------------------------------------------------
    def measure(self):
        """Cells and sum of cells (ADCVSC), then all GPIOs (ADAX), each
        after its conversion time; 0 or an ERR_*. Discharge is not
        permitted during the conversion (DCP = 0)."""
        self.wakeup()
        e = self._send(self.c_adcvsc)
        if e:
            return e
        self.clock.sleep_us(self.conv_cell_us)
        self.wake_idle()
        e = self._send(self.c_adax)
        if e:
            return e
        self.clock.sleep_us(self.conv_aux_us)
        self.wake_idle()
        e = self._read_cells(self.cells)
        if e:
            return e
        for g in range(self.n_aux):
            e = self._read(self.c_aux[g], self.aux, 3 * g, 12)
            if e:
                return e
        e = self._read(self.c_stata, self.stat, 0, 3)  # SC, ITMP, VA
        if e:
            return e
        for m in range(self.m):
            self.sc[m] = self.stat[3 * m]
        return 0

    def open_wire(self):
        """The datasheet's ADOW algorithm over the used inputs of every
        module. Fills open_pins (1 = that C pin's wire is open) and n_open;
        returns 0 or an ERR_*."""
        self.wakeup()
        e = self._ow_pass(self.c_adow_pu, self.pu)
        if not e:
            e = self._ow_pass(self.c_adow_pd, self.pd)
        if e:
            return e
        pu = self.pu
        pd = self.pd
        op = self.open_pins
        n = self.used
        c = self.c
        total = 0
        for m in range(self.m):
            o = m * c
            p = m * (c + 1)
            op[p] = 1 if pu[o] == 0 else 0
            for k in range(1, n):
                op[p + k] = 1 if pu[o + k] - pd[o + k] < OW_DELTA else 0
            op[p + n] = 1 if pd[o + n - 1] == 0 else 0
            for k in range(n + 1):
                total += op[p + k]
        self.n_open = total
        return 0

    def _ow_pass(self, cmd, dst):
        for _ in range(self.ow_repeats):
            e = self._send(cmd)
            if e:
                return e
            self.clock.sleep_us(self.conv_cell_us)
            self.wake_idle()
        return self._read_cells(dst)

    # -- balancing ---------------------------------------------------------------
    def write_config(self):
        """Writes CFGRA (and CFGRB on the LTC6813) with the DCC bits in
        self.dcc; the GPIO pull-downs stay off (GPIOs read thermistors) and
        the reference stays on between conversions."""
        tx = self.tx_cfg
        e = self._write_cfg(tx, 0)
        if e or self.c == 12:
            return e
        return self._write_cfg(tx, 1)

    def _write_cfg(self, tx, group):
        cmd = WRCFGA if group == 0 else WRCFGB
        tx[0] = cmd >> 8
        tx[1] = cmd & 0xFF
        p = self.pec(tx, 0, 2)
        tx[2] = p >> 8
        tx[3] = p & 0xFF
        last = self.m - 1
        for i in range(self.m):
            m = last - i  # farthest device first
            d = self.dcc[m]
            o = 4 + 8 * i
            if group == 0:
                tx[o] = 0xFC  # GPIO5..1 pull-downs off, REFON
                tx[o + 1] = 0
                tx[o + 2] = 0
                tx[o + 3] = 0
                tx[o + 4] = d & 0xFF
                tx[o + 5] = (d >> 8) & 0x0F  # DCTO = 0: no discharge timer
            else:
                tx[o] = 0x0F | ((d >> 8) & 0xF0)  # GPIO9..6 pull-downs off, DCC16..13
                tx[o + 1] = (d >> 16) & 0x03  # DCC18, DCC17
                tx[o + 2] = 0
                tx[o + 3] = 0
                tx[o + 4] = 0
                tx[o + 5] = 0
            p = self.pec(tx, o, 6)
            tx[o + 6] = p >> 8
            tx[o + 7] = p & 0xFF
        return self._send(tx)

    def balance_off(self):
        for m in range(self.m):
            self.dcc[m] = 0
        self.wakeup()
        return self.write_config()
