# BQ76952 bring-up from the chip's reset defaults, at every boot, and read
# back. Boot-time only (allocates; never called from the tick).
#
# Sources (cited per constant below):
#   TRM  = TI SLUUBY2B "BQ76952 Technical Reference Manual" (sections as
#          numbered in SLUUBY2B; the sibling BQ76942 TRM SLUUBY1B has the
#          same data memory and was read where the BQ76952 page was not in
#          the index).
#   SDG  = TI SLUAA11B "BQ769x2 Software Development Guide".
#   LS   = LibreSolar bms-firmware, bq769x2_registers.h (public driver,
#          used as a cross-check of data-memory addresses only).
#   UNVERIFIED = from memory of the TRM, not found in the indexed sources.
#
# Sequence (TRM 3.1 "Direct Commands and Subcommands", SDG 3 "Reading and
# Writing RAM Registers"):
#   1. find the communication mode: factory default is I2C at 7-bit 0x08
#      without CRC (TRM "I2C Communications Subsystem"; datasheet SLUSE13
#      "Serial Communications Interface": "default I2C mode"); a chip that
#      stayed powered through an MCU reset is already in CRC mode;
#   2. SET_CFGUPDATE 0x0090 (SDG Table 3-2), wait for Battery Status()
#      [CFGUPDATE] (bit 0: the family's Battery Status layout, BQ769142 TRM
#      SLUUCF2C, same register);
#   3. each setting: data-memory address to 0x3E/0x3F, data to 0x40..,
#      then 0x60 = ~(address bytes + data) & 0xFF and 0x61 = len + 4
#      (TRM "Data Memory Access", the worked example with Cell 1 Gain);
#   4. EXIT_CFGUPDATE 0x0092 (SDG Table 3-2), wait for CFGUPDATE clear;
#   5. SWAP_COMM_MODE 0x29BC if the chip is not in CRC mode yet: Comm Type
#      "is applied on reset or when the SWAP_COMM_MODE command is received"
#      (TRM Settings:Configuration:Comm Type, seen in SLUUCG7 for the
#      BQ76922 of the same family);
#   6. read every setting back (with CRC) and compare byte for byte.
# Nothing is ever written to OTP (no OTP_WRITE subcommand exists here).
import struct
from bms.drivers import ERR_BUS, ERR_CHIP, ERR_CONFIG
from bms.drivers.bq76952 import xfer_sum

SET_CFGUPDATE = 0x0090
EXIT_CFGUPDATE = 0x0092
SWAP_COMM_MODE = 0x29BC
BATTERY_STATUS = 0x12
CFGUPDATE_BIT = 0x01

# Data-memory addresses (TRM 13 "Data Memory Summary"; LS cross-check).
CC_GAIN = 0x91A8  # F4, Calibration:Current:CC Gain (UNVERIFIED address, TRM 13.2)
CAP_GAIN = 0x91AC  # F4, Calibration:Current:Capacity Gain (UNVERIFIED address)
COMM_TYPE = 0x9239  # U1 (LS)
I2C_ADDRESS = 0x923A  # U1, 8-bit write address (LS; default 0x10, SLUUCG7)
PIN_CONFIG = {  # H1 each (LS)
    "CFETOFF": 0x92FA, "DFETOFF": 0x92FB, "ALERT": 0x92FC, "TS1": 0x92FD, "TS2": 0x92FE,
    "TS3": 0x92FF, "HDQ": 0x9300, "DCHG": 0x9301, "DDSG": 0x9302,
}
DA_CONFIG = 0x9303  # H1 (LS)
VCELL_MODE = 0x9304  # H2 (LS; SDG 3.4 "Write VCell Mode")
FET_OPTIONS = 0x9308  # H1 (LS)
ENABLED_PROT_A = 0x9261  # H1 (LS)
ENABLED_PROT_B = 0x9262
CHG_FET_PROT_A = 0x9265
CHG_FET_PROT_B = 0x9266
DSG_FET_PROT_A = 0x9269
DSG_FET_PROT_B = 0x926A
BALANCING_CONFIG = 0x9335  # H1 (LS)
MFG_STATUS_INIT = 0x9343  # H2 (LS)
CUV_THRESHOLD = 0x9275  # U1, 50.6 mV (LS)
CUV_DELAY = 0x9276  # U2, 3.3 ms (LS)
COV_THRESHOLD = 0x9278
COV_DELAY = 0x9279
OCC_THRESHOLD = 0x9280  # U1, 2 mV of sense voltage (TRM Protections:OCC:Threshold, SLUUBY1B)
OCC_DELAY = 0x9281  # U1, 3.3 ms with a 6.6 ms offset (TRM Protections:OCC:Delay)
OCD1_THRESHOLD = 0x9282
OCD1_DELAY = 0x9283
SCD_THRESHOLD = 0x9286  # U1, enumerated (LS SCD_threshold_setting)
SCD_DELAY = 0x9287  # U1, (value - 1) x 15 us (TRM Protections:SCD:Delay, SLUUBY1B)
OTC_THRESHOLD = 0x929A  # I1 degC, then Delay U1 s, Recovery I1 degC (LS)
OTD_THRESHOLD = 0x929D
UTC_THRESHOLD = 0x92A6
UTD_THRESHOLD = 0x92A9

# Comm Type values (TRM Settings:Configuration:Comm Type; SLUUCG7 table).
COMM_I2C_CRC = 0x11  # up to 100 kHz
COMM_I2C_FAST_CRC = 0x12  # above 100 kHz
# TSx/pin config for an 18 kOhm-pulled-up thermistor on the 18K model used
# for the cell-temperature protections: OPT[5:0] = 000001, PIN_FXN = 3
# (TRM Settings:Configuration:TS1 Config; the TS1 default 0x07, SLUUBY1B).
PIN_THERMISTOR = 0x07
PIN_UNUSED = 0x00
# DA Configuration: USER_AMPS[1:0] = 2 (10 mA), USER_VOLTS_CV = 1 (10 mV)
# (TRM Settings:Configuration:DA Configuration, default 0x05 = 1 mA + cV;
# the 10 mA code 2 is UNVERIFIED beyond LS/PX4 writing 0x06 for 10 mA).
DA_10MA_CV = 0x06
# FET Options: SFET (0) | HOST_FET_EN (2) | FET_CTRL_EN (3) | FET_INIT_OFF
# (5): the chip drives its FETs itself on its protections, the host may
# turn them off, and they start off until the host allows them (TRM
# Settings:FET:FET Options, default 0x0D; bits as in SLUUBY1B).
FET_OPTIONS_VALUE = 0x2D
# Manufacturing Status Init FET_EN (bit 4): normal (autonomous) FET
# control instead of FET test mode (TRM Manufacturing Status bits,
# SLUUBY2B: OTPW_EN 7, PF_EN 6, PDSG_TEST 5, FET_EN 4).
MFG_FET_EN = 0x0010
# Enabled Protections A: SCD (7) | OCD1 (5) | OCC (4) | COV (3) | CUV (2),
# the bit layout of Safety Status A (LS struct; default 0x88 = SCD | COV,
# SDG 3.1).
PROT_A = 0xBC
# Enabled Protections B: OTD (5) | OTC (4) | UTD (1) | UTC (0) (SLUUBY1B
# Settings:Protection:Enabled Protections B, default 0x00).
PROT_B = 0x33
# CHG FET Protections A: SCD | OCC | COV, the default 0x98: "for the CHG FET
# turnoff action to occur immediately ... only 0x98 or 0x18" (SLUUBY1B).
CHG_FET_A = 0x98
DSG_FET_A = 0xE4  # SCD | OCD2 | OCD1 | CUV open DSG (the default, from memory: UNVERIFIED)
CHG_FET_B = 0x11  # OTC | UTC (bit layout: SLUUCG7 CHG FET Protections B)
DSG_FET_B = 0x22  # OTD | UTD
# SCD thresholds by code, mV of sense voltage (LS SCD_threshold_setting).
SCD_MV = (10, 20, 40, 60, 80, 100, 125, 150, 175, 200, 250, 300, 350, 400, 450, 500)
# The default CC Gain 7.4768 corresponds to a 1 mOhm sense resistor; the
# gain scales with 1/R, Capacity Gain = CC Gain x 298261.6178 (TRM 4.12
# "Current Calibration"; UNVERIFIED constants).
CC_GAIN_1MOHM = 7.4768
CAP_PER_CC = 298261.6178

# Margins of the chip's layer beyond the firmware's trips.
COV_MARGIN_MV = 25
CUV_MARGIN_MV = 25
T_MARGIN_C = 5
I_MARGIN_PCT = 25


class SetupError(ValueError):
    pass


def _u1(v):
    return bytes((v & 0xFF,))


def _u2(v):
    return bytes((v & 0xFF, (v >> 8) & 0xFF))


def _delay_3p3(ms, lo, hi):
    # t = (code + 2) x 3.3 ms (TRM Protections:OCC:Delay: "1 gives 10 ms")
    code = ms * 10 // 33 - 2
    return lo if code < lo else (hi if code > hi else code)


def settings(afe, cfg):
    """The data-memory image the firmware relies on, from the board's afe
    block and the pack configuration: a list of (address, bytes, name).
    Raises SetupError naming the field when the chip cannot hold a value."""
    from bms import faults as F
    trip = cfg.fault_trip
    tms = cfg.fault_trip_ms
    out = []

    def put(addr, data, name):
        out.append((addr, data, name))

    shunt = afe.get("shunt_uohm", 1000)
    if type(shunt) is not int or not 100 <= shunt <= 10000:
        raise SetupError("board.afe.shunt_uohm: expected 100..10000 (micro-ohm), got %r" % (shunt,))
    g = CC_GAIN_1MOHM * 1000 / shunt
    put(CC_GAIN, struct.pack("<f", g), "CC Gain")
    put(CAP_GAIN, struct.pack("<f", g * CAP_PER_CC), "Capacity Gain")
    freq = afe.get("i2c", {}).get("freq", 100000)
    put(COMM_TYPE, _u1(COMM_I2C_FAST_CRC if freq > 100000 else COMM_I2C_CRC), "Comm Type")
    put(I2C_ADDRESS, _u1(afe.get("address", 8) << 1), "I2C Address")
    temps = afe.get("temps", ())
    for name in ("CFETOFF", "DFETOFF", "ALERT", "TS1", "TS2", "TS3", "HDQ", "DCHG", "DDSG"):
        put(PIN_CONFIG[name], _u1(PIN_THERMISTOR if name in temps else PIN_UNUSED), name + " Config")
    put(DA_CONFIG, _u1(DA_10MA_CV), "DA Configuration")
    mask = 0
    for c in afe.get("cell_channels", ()):
        mask |= 1 << (c - 1)
    put(VCELL_MODE, _u2(mask), "VCell Mode")
    put(FET_OPTIONS, _u1(FET_OPTIONS_VALUE), "FET Options")
    put(MFG_STATUS_INIT, _u2(MFG_FET_EN), "Mfg Status Init")
    put(BALANCING_CONFIG, _u1(0), "Balancing Configuration")  # no autonomous balancing: host-controlled only
    # -- protections: just beyond the firmware's own critical trips ---------
    ov = trip[F.index("CELL_OV_CRIT")] + COV_MARGIN_MV
    cov = (ov * 10 + 505) // 506  # 50.6 mV steps, rounded up
    uv = trip[F.index("CELL_UV_CRIT")] - CUV_MARGIN_MV
    cuv = uv * 10 // 506  # rounded down
    if not 20 <= cov <= 110:
        raise SetupError("faults.CELL_OV_CRIT: the chip's COV cannot sit at %d mV (range 1012..5566 mV)" % ov)
    if not 20 <= cuv <= 90:
        raise SetupError("faults.CELL_UV_CRIT: the chip's CUV cannot sit at %d mV (range 1012..4554 mV)" % uv)
    put(COV_THRESHOLD, _u1(cov), "COV Threshold")
    put(COV_DELAY, _u2(_delay_3p3(tms[F.index("CELL_OV_CRIT")] + 500, 1, 2047)), "COV Delay")
    put(CUV_THRESHOLD, _u1(cuv), "CUV Threshold")
    put(CUV_DELAY, _u2(_delay_3p3(tms[F.index("CELL_UV_CRIT")] + 500, 1, 2047)), "CUV Delay")

    def sense_code(name, step_mv, lo, hi):
        ma = trip[F.index(name)] * (100 + I_MARGIN_PCT) // 100
        uv_ = ma * shunt // 1000  # uV across the shunt
        code = (uv_ + 1000 * step_mv - 1) // (1000 * step_mv)
        if not lo <= code <= hi:
            raise SetupError("board.afe.shunt_uohm: %s + %d %% is %d mV across %d uOhm, outside the chip's %d..%d mV"
                             % (name, I_MARGIN_PCT, uv_ // 1000, shunt, lo * step_mv, hi * step_mv))
        return code, uv_

    occ, _ = sense_code("OC_CHG", 2, 2, 62)
    ocd, _ = sense_code("OC_DSG", 2, 2, 100)
    put(OCC_THRESHOLD, _u1(occ), "OCC Threshold")
    # The chip's OCC/OCD1 delays end at 425 ms (code 127), shorter than the
    # firmware's OC delays: the chip's layer trips earlier, at 25 % more.
    put(OCC_DELAY, _u1(_delay_3p3(tms[F.index("OC_CHG")] + 100, 1, 127)), "OCC Delay")
    put(OCD1_THRESHOLD, _u1(ocd), "OCD1 Threshold")
    put(OCD1_DELAY, _u1(_delay_3p3(tms[F.index("OC_DSG")] + 100, 1, 127)), "OCD1 Delay")
    sc_uv = trip[F.index("SHORT_CIRCUIT")] * (100 + I_MARGIN_PCT) // 100 * shunt // 1000
    scd = 0
    while scd < 15 and SCD_MV[scd] * 1000 < sc_uv:
        scd += 1
    if SCD_MV[scd] * 1000 < sc_uv:
        raise SetupError("board.afe.shunt_uohm: SHORT_CIRCUIT + %d %% is %d mV across the shunt, above the chip's 500 mV SCD"
                         % (I_MARGIN_PCT, sc_uv // 1000))
    put(SCD_THRESHOLD, _u1(scd), "SCD Threshold")
    put(SCD_DELAY, _u1(1 + 200 // 15), "SCD Delay")  # ~200 us: far below one scan

    def temp(addr, name, above, label):
        c = trip[F.index(name)] // 10
        c = c + T_MARGIN_C if above else c - T_MARGIN_C
        if not -40 <= c <= 120:
            raise SetupError("faults.%s: the chip's %s cannot sit at %d degC (-40..120)" % (name, label, c))
        rec = c - T_MARGIN_C if above else c + T_MARGIN_C
        d = (tms[F.index(name)] + 999) // 1000 + 1  # whole seconds, one more
        put(addr, _u1(c), label + " Threshold")
        put(addr + 1, _u1(d if d < 255 else 255), label + " Delay")
        put(addr + 2, _u1(rec), label + " Recovery")

    temp(OTC_THRESHOLD, "OT_CHG", True, "OTC")
    temp(OTD_THRESHOLD, "OT_DSG", True, "OTD")
    temp(UTC_THRESHOLD, "UT_CHG", False, "UTC")
    temp(UTD_THRESHOLD, "UT_DSG", False, "UTD")
    put(ENABLED_PROT_A, _u1(PROT_A), "Enabled Protections A")
    put(ENABLED_PROT_B, _u1(PROT_B), "Enabled Protections B")
    put(CHG_FET_PROT_A, _u1(CHG_FET_A), "CHG FET Protections A")
    put(CHG_FET_PROT_B, _u1(CHG_FET_B), "CHG FET Protections B")
    put(DSG_FET_PROT_A, _u1(DSG_FET_A), "DSG FET Protections A")
    put(DSG_FET_PROT_B, _u1(DSG_FET_B), "DSG FET Protections B")
    return out


class BringUp:
    """Runs the sequence on a BQ76952 driver (bms.drivers.bq76952). result:
    0 or an ERR_*; failed: the name of the setting or step that failed."""

    def __init__(self, drv, table, polls=20, poll_us=1000):
        self.drv = drv
        self.table = table
        self.polls = polls
        self.poll_us = poll_us
        self.failed = None
        self.crc = False
        self.buf2 = bytearray(2)
        self.buf8 = bytearray(8)
        self.rd = bytearray(32)

    # -- plain (factory) mode: no CRC bytes on the bus -------------------------
    def _pwrite(self, reg, data):
        d = self.drv
        try:
            d.i2c.writeto_mem(d.addr, reg, data)
        except OSError:
            return ERR_BUS
        return 0

    def _sub(self, cmd):
        if self.crc:
            return self.drv.subcommand(cmd)
        return self._pwrite(0x3E, _u2(cmd))

    def _dm_write(self, addr, data):
        n = len(data)
        if self.crc:
            return self.drv.subcommand_write(addr, data, n, bytearray(2 * n))
        e = self._pwrite(0x3E, _u2(addr))
        if not e:
            e = self._pwrite(0x40, data)
        if not e:
            e = self._pwrite(0x60, bytes((xfer_sum(addr, data, n), n + 4)))
        return e

    def _status(self):
        """Battery Status low byte, or -ERR_*."""
        d = self.drv
        if self.crc:
            e = d._read(BATTERY_STATUS, self.buf8, 4)
            return -e if e else self.buf8[0]
        try:
            d.i2c.readfrom_mem_into(d.addr, BATTERY_STATUS, self.buf2)
        except OSError:
            return -ERR_BUS
        return self.buf2[0]

    def _wait_cfg(self, want):
        for _ in range(self.polls):
            s = self._status()
            if s < 0:
                return -s
            if (s & CFGUPDATE_BIT) == want:
                return 0
            self.drv.clock.sleep_us(self.poll_us)
        return ERR_CHIP

    def _fail(self, e, what):
        self.failed = what
        return e

    def _probe(self):
        # Four data bytes whose CRCs all match mean CRC mode (a plain-mode
        # chip passes by chance with 2^-32).
        return self.drv._read(BATTERY_STATUS, self.buf8, 4)

    def run(self):
        d = self.drv
        # 1. Communication mode.
        e = self._probe()
        if e == ERR_BUS:
            return self._fail(e, "no answer at 0x%02x" % d.addr)
        self.crc = e == 0
        # 2. CONFIG_UPDATE.
        e = self._sub(SET_CFGUPDATE)
        if not e:
            e = self._wait_cfg(CFGUPDATE_BIT)
        if e:
            return self._fail(e, "SET_CFGUPDATE")
        # 3. Every setting.
        for addr, data, name in self.table:
            e = self._dm_write(addr, data)
            if e:
                return self._fail(e, name)
        # 4. Leave CONFIG_UPDATE (measurements resume).
        e = self._sub(EXIT_CFGUPDATE)
        if not e:
            e = self._wait_cfg(0)
        if e:
            return self._fail(e, "EXIT_CFGUPDATE")
        # 5. CRC from here on.
        if not self.crc:
            e = self._sub(SWAP_COMM_MODE)
            if e:
                return self._fail(e, "SWAP_COMM_MODE")
            self.crc = True
            d.clock.sleep_us(self.poll_us)
            if self._status() < 0:
                return self._fail(ERR_CHIP, "SWAP_COMM_MODE (no CRC answer)")
        # 6. Read back, one 32-byte window per group of nearby settings.
        rows = sorted(self.table)
        i = 0
        while i < len(rows):
            base = rows[i][0]
            n = d.subcommand_read(base, self.rd)
            if n < 32:
                return self._fail(-n if n < 0 else ERR_CHIP, "read back " + rows[i][2])
            while i < len(rows) and rows[i][0] + len(rows[i][1]) <= base + 32:
                addr, data, name = rows[i]
                o = addr - base
                for k in range(len(data)):
                    if self.rd[o + k] != data[k]:
                        return self._fail(ERR_CONFIG, name)
                i += 1
        return 0
