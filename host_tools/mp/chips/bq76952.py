# A register-level model of the TI BQ76952 on I2C that starts where a
# factory-fresh chip starts and enforces the chip's rules, so a driver that
# skips or reorders a bring-up step fails a test. Document sections: see
# firmware/bms/drivers/bq76952.py and bq76952_setup.py (TRM = SLUUBY2B).
#
# Rules modelled:
# - reset state: 7-bit address 0x08, no CRC (TRM "I2C Communications
#   Subsystem"); Comm Type and I2C Address take effect only on
#   SWAP_COMM_MODE 0x29BC or a reset (TRM Comm Type description). Without
#   CRC a read returns plain bytes and a write is taken byte for byte (CRC
#   bytes a host sends to a plain-mode chip land as data); with CRC each
#   byte carries a CRC-8 and a write with a wrong one is discarded.
# - data-memory defaults (TRM Data Memory tables, defaults as read in
#   SLUUBY1B/SLUUCG7; marked where from memory): DA Configuration 0x05
#   (1 mA, 10 mV), VCell Mode 0 (16 cells), TS1 Config 0x07, TS3 Config
#   0x07 (UNVERIFIED), other pins 0x00, Enabled Protections A 0x88 (SCD,
#   COV; UNVERIFIED), COV 86 (4.35 V), CUV 50 (2.53 V), FET Options 0x0D,
#   Mfg Status Init 0 (FET test mode: the FETs stay off), CC Gain 7.4768.
# - data-memory writes count only inside CONFIG_UPDATE (SET_CFGUPDATE
#   0x0090 .. EXIT_CFGUPDATE 0x0092; the rule, TI recommends it:
#   SDG 3.2) and only with the right checksum (0x60) and length (0x61);
#   anything else is ignored (counted in `ignored`).
# - measurements, protections and FETs pause in CONFIG_UPDATE (TRM
#   "CONFIG_UPDATE Mode"; FETs off there is UNVERIFIED).
# - units follow DA Configuration (USER_AMPS, USER_VOLTS_CV); the current
#   follows the CC Gain written for the board's shunt; a TS pin not
#   configured as a thermistor reads 0 (UNVERIFIED: what an unused pin reports).
# - its own protections from its own registers: COV, CUV, OCC, OCD1, SCD,
#   OTC, OTD, UTC, UTD with their thresholds, delays and the FET masks,
#   Safety Alert/Status A/B bits, recovery after Protections:Recovery:Time
#   (3 s default; SCD 5 s) once the condition is gone (simplified: no
#   hysteresis, no latch counters). A current pulse shorter than a tick
#   (pulse_current) is judged by SCD alone.
# - OTP: the OTP_WRITE subcommand 0x00A0 is counted and refused.
import math
import struct

ADDR = 0x08
DM_BASE = 0x9180
DM_SIZE = 0x300
SCD_MV = (10, 20, 40, 60, 80, 100, 125, 150, 175, 200, 250, 300, 350, 400, 450, 500)
PIN_ADDR = {"CFETOFF": 0x92FA, "DFETOFF": 0x92FB, "ALERT": 0x92FC, "TS1": 0x92FD, "TS2": 0x92FE,
            "TS3": 0x92FF, "HDQ": 0x9300, "DCHG": 0x9301, "DDSG": 0x9302}
TEMP_ORDER = ("INT", "CFETOFF", "DFETOFF", "ALERT", "TS1", "TS2", "TS3", "HDQ", "DCHG", "DDSG")


def crc8(data, crc=0):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _s16(v):
    v = int(round(v))
    return -32768 if v < -32768 else (32767 if v > 32767 else v)


class _Clock:
    def __init__(self):
        self.us = 0

    def ticks_us(self):
        return self.us


class BQ76952Model:
    def __init__(self, addr=ADDR, clock=None, shunt_uohm=1000):
        self.clock = clock or _Clock()
        self.shunt_uohm = shunt_uohm
        self.wired_addr = addr  # where the board expects it once configured
        self.corrupt = 0
        self.crc_errors = 0
        self.ignored = 0  # data-memory writes the chip did not take
        self.otp_writes = 0
        self.writes = 0
        self.transactions = 0
        self.bytes = 0
        self.subcommands = []
        self.silent = False
        self.cell_mv = [3300] * 16
        self.open_wire = -1
        self.stack = [0, 0, 0]  # true stack, PACK, LD in 10 mV
        self.current_10ma = 0  # true current, + = charge
        self.temp_dk = [2982] * 10  # true temperatures at each pin
        self.power_on()

    # -- reset ------------------------------------------------------------------
    def power_on(self):
        """A power-on reset: everything from the defaults (RAM is lost)."""
        self.addr = ADDR
        self.crc = False
        self.cfgupdate = False
        self.img = bytearray(0x80)
        self.dm = bytearray(DM_SIZE)
        d = self._dm_put
        d(0x91A8, struct.pack("<f", 7.4768))
        d(0x91AC, struct.pack("<f", 7.4768 * 298261.6178))
        d(0x9239, b"\x00")  # Comm Type: default
        d(0x923A, b"\x10")
        d(0x92FD, b"\x07")
        d(0x92FF, b"\x07")
        d(0x9303, b"\x05")
        d(0x9261, b"\x88")
        d(0x9262, b"\x00")
        d(0x9265, b"\x98")
        d(0x9269, b"\xe4")
        d(0x9266, b"\x00")
        d(0x926A, b"\x00")
        d(0x9275, bytes((50,)))
        d(0x9276, struct.pack("<H", 74))
        d(0x9278, bytes((86,)))
        d(0x9279, struct.pack("<H", 74))
        d(0x9280, b"\x02")
        d(0x9281, b"\x04")
        d(0x9282, b"\x04")
        d(0x9283, b"\x01")
        d(0x9286, b"\x00")
        d(0x9287, b"\x02")
        d(0x929A, bytes((55, 2, 50)))
        d(0x929D, bytes((60, 2, 55)))
        d(0x92A6, bytes((0, 2, 5)))
        d(0x92A9, bytes((0, 2, 5)))
        d(0x92AF, b"\x03")
        d(0x9294, b"\x05")
        d(0x9308, b"\x0d")
        self.cb_mask = 0
        self.fets_allowed = True
        self.fet_status = 0
        self.safety = bytearray(6)
        self.since = {}  # protection -> time (us) its condition started
        self.gone = {}  # protection -> time its condition went away
        self.sub = 0
        self.sub_busy = 0
        self.sub_data = bytearray(32)
        self.sub_len = 0
        self.xfer = bytearray(32)
        self._measure()

    def _dm_put(self, a, data):
        self.dm[a - DM_BASE: a - DM_BASE + len(data)] = data

    def dm_u1(self, a):
        return self.dm[a - DM_BASE]

    def dm_i1(self, a):
        v = self.dm[a - DM_BASE]
        return v - 256 if v > 127 else v

    def dm_u2(self, a):
        o = a - DM_BASE
        return self.dm[o] | (self.dm[o + 1] << 8)

    def configure(self, table):
        """A chip someone already configured (or this firmware on an earlier
        boot while the chip stayed powered): table as from
        bq76952_setup.settings; then SWAP_COMM_MODE."""
        for a, data, _ in table:
            self._dm_put(a, data)
        self._swap()
        self._measure()

    def _swap(self):
        ct = self.dm_u1(0x9239)
        self.crc = ct in (0x11, 0x12)
        a = self.dm_u1(0x923A) >> 1
        if a:
            self.addr = a

    # -- plant side ---------------------------------------------------------------
    def set_cells_mv(self, mv):
        for i in range(16):
            self.cell_mv[i] = mv[i] if i < len(mv) else 0
        self._measure()

    def set_stack(self, stack_10mv, pack_10mv, ld_10mv, current_10ma):
        """True values: stack/PACK/LD in 10 mV, current in 10 mA (+ = charge)."""
        self.stack = [stack_10mv, pack_10mv, ld_10mv]
        self.current_10ma = current_10ma
        self._measure()

    def set_temps_dk(self, dk):
        self.temp_dk = list(dk)
        self._measure()

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
        self.temp_dk[pin_index] = dk
        self._measure()

    def _put16(self, reg, v):
        v &= 0xFFFF
        self.img[reg] = v & 0xFF
        self.img[reg + 1] = v >> 8

    def _measure(self):
        """One measurement scan of the chip: registers, then its protections.
        Paused in CONFIG_UPDATE."""
        if self.cfgupdate:
            return
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
        da = self.dm_u1(0x9303)
        vs = 1 if da & 4 else 10  # USER_VOLTS_CV: 10 mV, else 1 mV
        for k in range(3):
            self._put16(0x34 + 2 * k, _s16(self.stack[k] * vs))
        self._put16(0x3A, _s16(self.current_ma() / (0.1, 1, 10, 100)[da & 3]))
        for i in range(10):
            name = TEMP_ORDER[i]
            if name == "INT":
                t = self.temp_dk[i]
            else:
                t = self.temp_dk[i] if self.dm_u1(PIN_ADDR[name]) & 3 == 3 else 0
            self._put16(0x68 + 2 * i, t)
        self._protect(v)

    def current_ma(self):
        """What the chip's coulomb counter makes of the true current: the
        CC Gain written against the one the shunt needs."""
        g = struct.unpack("<f", bytes(self.dm[0x91A8 - DM_BASE: 0x91AC - DM_BASE]))[0]
        want = 7.4768 * 1000 / self.shunt_uohm
        return self.current_10ma * 10 * g / want

    # -- the chip's own protections ------------------------------------------------
    def _cell_temps(self):
        out = []
        for name, a in PIN_ADDR.items():
            c = self.dm_u1(a)
            if c & 3 == 3 and (c >> 2) & 3 == 1:  # thermistor for cell-temperature protections
                out.append(self.temp_dk[TEMP_ORDER.index(name)] / 10 - 273.15)
        return out

    def _protect(self, v):
        now = self.clock.ticks_us()
        mask = self.dm_u2(0x9304) or 0xFFFF
        cells = [v[i] for i in range(16) if mask >> i & 1]
        sense_uv = abs(self.current_10ma) * 10 * self.shunt_uohm / 1000
        chg = self.current_10ma > 0
        temps = self._cell_temps()
        tmax = max(temps) if temps else -300
        tmin = min(temps) if temps else 300
        d33 = lambda a, two: ((self.dm_u2(a) if two else self.dm_u1(a)) + 2) * 3300
        conds = (
            # (name, byte index of the status, bit, condition, delay us)
            ("CUV", 1, 0x04, min(cells) <= self.dm_u1(0x9275) * 50.6, d33(0x9276, True)),
            ("COV", 1, 0x08, max(cells) >= self.dm_u1(0x9278) * 50.6, d33(0x9279, True)),
            ("OCC", 1, 0x10, chg and sense_uv >= self.dm_u1(0x9280) * 2000, d33(0x9281, False)),
            ("OCD1", 1, 0x20, not chg and sense_uv >= self.dm_u1(0x9282) * 2000, d33(0x9283, False)),
            ("SCD", 1, 0x80, not chg and sense_uv >= SCD_MV[self.dm_u1(0x9286) & 15] * 1000, 0),
            ("UTC", 3, 0x01, tmin <= self.dm_i1(0x92A6), self.dm_u1(0x92A7) * 1000000),
            ("UTD", 3, 0x02, tmin <= self.dm_i1(0x92A9), self.dm_u1(0x92AA) * 1000000),
            ("OTC", 3, 0x10, tmax >= self.dm_i1(0x929A), self.dm_u1(0x929B) * 1000000),
            ("OTD", 3, 0x20, tmax >= self.dm_i1(0x929D), self.dm_u1(0x929E) * 1000000),
        )
        en = (0, self.dm_u1(0x9261), 0, self.dm_u1(0x9262))
        for name, byte, bit, cond, delay in conds:
            self._judge(name, byte, bit, cond and en[byte] & bit, delay, now)
        self._fets()

    def _judge(self, name, byte, bit, cond, delay_us, now):
        s = self.safety
        if cond:
            s[byte - 1] |= bit  # alert at once
            t0 = self.since.setdefault(name, now)
            if now - t0 >= delay_us:
                s[byte] |= bit
            self.gone.pop(name, None)
        else:
            s[byte - 1] &= ~bit
            self.since.pop(name, None)
            if s[byte] & bit:
                g = self.gone.setdefault(name, now)
                rec = (self.dm_u1(0x9294) if name == "SCD" else self.dm_u1(0x92AF)) * 1000000
                if now - g >= rec:
                    s[byte] &= ~bit
                    self.gone.pop(name, None)

    def pulse_current(self, current_10ma, dur_us):
        """A discharge pulse between two scans (a short through a load):
        only the SCD comparator is fast enough to judge it (TRM 5.2
        "Short Circuit in Discharge": hardware comparator, 15 us steps)."""
        if self.cfgupdate or not self.dm_u1(0x9261) & 0x80:
            return
        sense_uv = abs(current_10ma) * 10 * self.shunt_uohm / 1000
        delay = (max(self.dm_u1(0x9287), 1) - 1) * 15
        if current_10ma < 0 and sense_uv >= SCD_MV[self.dm_u1(0x9286) & 15] * 1000 and dur_us >= delay:
            self.safety[1] |= 0x80
            self.gone.pop("SCD", None)
            self.since.pop("SCD", None)
            self._fets()

    def _fets(self):
        fet_en = self.dm_u2(0x9343) & 0x10 and self.dm_u1(0x9308) & 0x08
        if self.cfgupdate or not fet_en or not self.fets_allowed:
            self.fet_status = 0
            return
        s = self.safety
        chg_block = (s[1] & self.dm_u1(0x9265)) or (s[3] & self.dm_u1(0x9266))
        dsg_block = (s[1] & self.dm_u1(0x9269)) or (s[3] & self.dm_u1(0x926A))
        self.fet_status = (0 if chg_block else 1) | (0 if dsg_block else 4)

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
        if reg == 0x12:
            return 1 if self.cfgupdate else 0  # Battery Status [CFGUPDATE]
        if reg == 0x7F:
            return self.fet_status
        if reg < 0x80:
            return self.img[reg]
        return 0

    def read(self, mem, buf):
        self.transactions += 1
        self.bytes += len(buf)
        if self.silent:
            raise OSError(19)
        if not self.crc:
            for i in range(len(buf)):
                buf[i] = self._byte((mem + i) & 0xFF)
        else:
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
        self.transactions += 1
        self.bytes += len(buf)
        if self.silent:
            raise OSError(19)
        if self.crc:
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
        else:
            data = bytearray(buf)
            n = len(data)
        if mem == 0x3E and n >= 2:
            self._subcommand(data[0] | (data[1] << 8))
            for i in range(2, n):
                self.xfer[i - 2] = data[i]
        elif 0x40 <= mem < 0x60:
            for i in range(n):
                if mem - 0x40 + i < 32:
                    self.xfer[mem - 0x40 + i] = data[i]
        elif mem == 0x60 and n >= 2:
            ln = data[1] - 4
            s = (self.sub & 0xFF) + (self.sub >> 8) + sum(self.xfer[:max(ln, 0)])
            if ln < 1 or ln > 32 or (~s) & 0xFF != data[0]:
                self.crc_errors += 1  # checksum or length wrong: the chip ignores it
                self.ignored += 1
                return
            if self.sub == 0x0083 and ln == 2:
                self.cb_mask = self.xfer[0] | (self.xfer[1] << 8)
                self._log("CB_ACTIVE_CELLS", self.cb_mask)
            elif DM_BASE <= self.sub < DM_BASE + DM_SIZE:
                if not self.cfgupdate:
                    self.ignored += 1
                    return
                self._dm_put(self.sub, bytes(self.xfer[:ln]))
                self._log("DM", self.sub)

    def _log(self, name, arg):
        # the last few subcommands acted on (tests look at them)
        if len(self.subcommands) >= 200:
            self.subcommands.pop(0)
        self.subcommands.append((name, arg))

    def _subcommand(self, cmd):
        self.sub = cmd
        self.sub_busy = 1
        self.sub_len = 0
        if DM_BASE <= cmd < DM_BASE + DM_SIZE:  # data-memory read: 32 bytes from there
            o = cmd - DM_BASE
            blk = self.dm[o: o + 32]
            self.sub_data[:len(blk)] = blk
            self.sub_len = 32
        elif cmd == 0x0001:  # DEVICE_NUMBER
            self.sub_data[0] = 0x95
            self.sub_data[1] = 0x76
            self.sub_len = 2
        elif cmd == 0x0083:  # CB_ACTIVE_CELLS read
            self.sub_data[0] = self.cb_mask & 0xFF
            self.sub_data[1] = self.cb_mask >> 8
            self.sub_len = 2
        elif cmd == 0x0090:
            self.cfgupdate = True
            self.fet_status = 0
            self._log("SET_CFGUPDATE", 0)
        elif cmd == 0x0092:
            if self.cfgupdate:
                self.cfgupdate = False
                self._log("EXIT_CFGUPDATE", 0)
                self._measure()
        elif cmd == 0x29BC:
            self._swap()
            self._log("SWAP_COMM_MODE", 0)
        elif cmd == 0x00A0:
            self.otp_writes += 1  # OTP_WRITE: never acted on here
        elif cmd == 0x0095:  # ALL_FETS_OFF
            self.fets_allowed = False
            self._fets()
            self._log("ALL_FETS_OFF", 0)
        elif cmd == 0x0096:  # ALL_FETS_ON
            self.fets_allowed = True
            self._fets()
            self._log("ALL_FETS_ON", 0)
