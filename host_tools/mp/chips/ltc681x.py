# A model of an LTC6811-1 / LTC6813-1 daisy chain on SPI (see the driver,
# firmware/bms/drivers/ltc681x.py, for the datasheet sections): commands
# with PEC-15, reads of 6 bytes + PEC per device (the device nearest the
# host first), writes with the farthest device's data first, conversions
# that land in the registers only after their conversion time, isoSPI idle
# (first CS pulse after ~4.3 ms of silence only wakes the port), core sleep
# after 2 s without a valid command (configuration reset: DCC off), the
# ADOW open-wire signature, and injected faults: corrupt (flip a bit in the
# next n read frames), silent (the chain answers 0xFF).


def pec15(data):
    rem = 16
    for b in data:
        rem ^= b << 7
        for _ in range(8):
            rem <<= 1
            if rem & 0x8000:
                rem ^= 0x4599
        rem &= 0x7FFF
    return (rem << 1) & 0xFFFF


T_IDLE_US = 4300
T_SLEEP_US = 2000000
T_WAKE_US = 300
# 7 kHz mode, all cells (+ the ADCVSC sum step, MEM ~0.2 ms) and all GPIOs:
# LTC6804/6811 2,335 us each (LTC6804 datasheet Tables 5 and 7); LTC6813
# ~3.1 / ~4.0 ms (from memory, unverified). See the driver's constants.
CONV_CELL_US = {12: 2335 + 200, 18: 3100 + 200}
CONV_AUX_US = {12: 2335, 18: 4000}
SC_FACTOR = {12: 20, 18: 30}  # sum of cells x factor x 100 uV (LTC6804 "Sum of Cells"; Linduino DC2350)
CV_GROUP = {0x004: 0, 0x006: 1, 0x008: 2, 0x00A: 3, 0x009: 4, 0x00B: 5}
AUX_GROUP = {0x00C: 0, 0x00E: 1, 0x00D: 2, 0x00F: 3}


class Device:
    def __init__(self, channels):
        self.c = channels
        self.cell_in = [33000] * channels  # true cell voltages, 100 uV
        self.gpio_in = [15000] * 9
        self.ref = 30000
        self.cells = [0xFFFF] * channels  # registers (cleared: 0xFFFF)
        self.aux = [0xFFFF] * 12
        self.stat = [0xFFFF] * 3
        self.cfga = bytearray(6)
        self.cfgb = bytearray(6)
        self.open_pin = -1
        self.ow_dir = 0  # +1 pull-up, -1 pull-down, 0 none
        self.ow_n = 0

    def reset_config(self):
        self.cfga = bytearray(6)
        self.cfgb = bytearray(6)

    def dcc(self):
        a, b = self.cfga, self.cfgb
        return a[4] | ((a[5] & 0x0F) << 8) | ((b[0] & 0xF0) << 8) | ((b[1] & 0x03) << 16)

    def convert_cells(self, pull):
        v = list(self.cell_in)
        p = self.open_pin
        n = self.c
        if 0 <= p <= n:
            # Cell p (1-based) lies under pin C(p), cell p+1 over it. The
            # open pin is displaced by s: the pull-up current drags it up to
            # the pin above, the pull-down to the pin below (half way after
            # one conversion, all the way after two); with no current it
            # floats half way between its neighbours (filter capacitors).
            if pull != 0 and pull == self.ow_dir:
                self.ow_n += 1
            else:
                self.ow_dir = pull
                self.ow_n = 1
            f = 1.0 if self.ow_n >= 2 else 0.5
            if pull > 0:
                s = f * v[p] if p < n else 0
            elif pull < 0:
                s = -f * v[p - 1] if p > 0 else 0
            elif p == 0:
                s = 0.5 * v[0]
            elif p == n:
                s = -0.5 * v[n - 1]
            else:
                s = 0.5 * (v[p] - v[p - 1])
            if p > 0:
                v[p - 1] += s
            if p < n:
                v[p] -= s
        self.cells = [min(65535, max(0, int(round(x)))) for x in v]
        self.stat[0] = min(65535, int(sum(self.cell_in) // SC_FACTOR[self.c]))


class LtcChain:
    def __init__(self, clock, modules, channels=18):
        self.clock = clock
        self.c = channels
        self.dev = [Device(channels) for _ in range(modules)]
        self.last = -10 ** 12  # last activity (us)
        self.last_cmd = -10 ** 12  # last valid command (watchdog)
        self.awake = [False] * modules
        self.ready_at = [0] * modules
        self.alive_until = [0] * modules
        self.frame = bytearray()
        self.out = bytearray()
        self.in_frame = False
        self.port_awake = False
        self.pending = []  # (done_us, kind, pull)
        self.corrupt = 0
        self.silent = False
        self.pec_errors = 0
        self.commands = {}  # code -> count of valid commands

    # -- CS and data -----------------------------------------------------------
    def cs(self, level):
        now = self.clock.ticks_us()
        if level == 0:
            self._settle(now)
            for i, d in enumerate(self.dev):
                if self.awake[i] and now > self.alive_until[i]:
                    d.reset_config()  # the watchdog expired: SLEEP
                    self.awake[i] = False
            self.port_awake = now - self.last <= T_IDLE_US
            # A CS pulse wakes the next sleeping device in the chain.
            for i in range(len(self.dev)):
                if not self.awake[i]:
                    self.awake[i] = True
                    self.ready_at[i] = now + T_WAKE_US
                    self.alive_until[i] = now + T_SLEEP_US
                    break
            self.frame = bytearray()
            self.out = bytearray()
            self.in_frame = True
        else:
            if self.in_frame:
                self._end(now)
            self.in_frame = False
        self.last = now

    def _ready(self, now):
        return self.port_awake and all(self.awake) and all(now >= r for r in self.ready_at)

    def mosi(self, buf):
        self.frame += bytes(buf)
        if len(self.frame) == 4 and not self.out:
            self._command(self.clock.ticks_us(), read_only=True)

    def miso(self, buf):
        for i in range(len(buf)):
            buf[i] = self.out[i] if i < len(self.out) else 0xFF
        self.out = self.out[len(buf):]

    def _cmd_ok(self):
        f = self.frame
        return len(f) >= 4 and pec15(f[:2]) == (f[2] << 8) | f[3]

    def _command(self, now, read_only):
        """Read commands answer while CS is still low."""
        if not self._ready(now) or self.silent:
            return
        if not self._cmd_ok():
            self.pec_errors += 1
            return
        code = ((self.frame[0] << 8) | self.frame[1]) & 0x7FF
        self._settle(now)
        regs = None
        if code in CV_GROUP:
            g = CV_GROUP[code]
            regs = [d.cells[3 * g: 3 * g + 3] for d in self.dev]
        elif code in AUX_GROUP:
            g = AUX_GROUP[code]
            regs = [d.aux[3 * g: 3 * g + 3] for d in self.dev]
        elif code == 0x010:
            regs = [d.stat for d in self.dev]
        elif code == 0x002:
            regs = [None for d in self.dev]
        if regs is None:
            return
        self._alive(now)
        self.commands[code] = self.commands.get(code, 0) + 1
        out = bytearray()
        for i, d in enumerate(self.dev):
            if code == 0x002:
                data = bytes(d.cfga)
            else:
                data = bytes(b for v in regs[i] for b in (v & 0xFF, v >> 8))
            p = pec15(data)
            out += data + bytes((p >> 8, p & 0xFF))
        if self.corrupt:
            self.corrupt -= 1
            out[1] ^= 0x04
        self.out = out

    def _end(self, now):
        f = self.frame
        if len(f) < 4 or not self._ready(now) or self.silent:
            return
        if not self._cmd_ok():
            if len(f) > 4:
                self.pec_errors += 1  # (a bare command was counted when it arrived)
            return
        code = ((f[0] << 8) | f[1]) & 0x7FF
        n = len(self.dev)
        if code in (0x001, 0x024):
            if len(f) != 4 + 8 * n:
                return
            for i in range(n):
                chunk = f[4 + 8 * i: 12 + 8 * i]
                if pec15(chunk[:6]) != (chunk[6] << 8) | chunk[7]:
                    self.pec_errors += 1
                    continue
                d = self.dev[n - 1 - i]  # farthest device's data first
                if code == 0x001:
                    d.cfga = bytearray(chunk[:6])
                elif self.c == 18:
                    d.cfgb = bytearray(chunk[:6])
            self._alive(now)
            self.commands[code] = self.commands.get(code, 0) + 1
            return
        kind = None
        if code & 0x66F == 0x467:  # ADCVSC
            kind, pull, t = "cells", 0, CONV_CELL_US[self.c]
        elif code & 0x668 == 0x260:  # ADCV
            kind, pull, t = "cells", 0, CONV_CELL_US[self.c]
        elif code & 0x628 == 0x228:  # ADOW
            kind, pull, t = "cells", (1 if code & 0x40 else -1), CONV_CELL_US[self.c]
        elif code & 0x678 == 0x460:  # ADAX
            kind, pull, t = "aux", 0, CONV_AUX_US[self.c]
        if kind is None:
            return
        self._alive(now)
        self.commands[code] = self.commands.get(code, 0) + 1
        dcp = (code >> 4) & 1 if kind == "cells" else 1
        self.pending.append((now + t, kind, pull, dcp))

    def _alive(self, now):
        self.last_cmd = now
        for i in range(len(self.dev)):
            self.alive_until[i] = now + T_SLEEP_US

    def _settle(self, now):
        keep = []
        for done, kind, pull, dcp in self.pending:
            if now >= done:
                for d in self.dev:
                    if kind == "cells":
                        d.convert_cells(pull)
                    else:
                        g = d.gpio_in
                        d.aux = [g[0], g[1], g[2], g[3], g[4], d.ref, g[5], g[6], g[7], g[8], 0, 0]
            else:
                keep.append((done, kind, pull, dcp))
        self.pending = keep

    # -- plant side -----------------------------------------------------------
    def balancing(self):
        """Per module, the DCC bits in force (0 while asleep)."""
        now = self.clock.ticks_us()
        asleep = now - self.last_cmd > T_SLEEP_US
        # DCP = 0: the switches are paused while a cell conversion runs
        # (LTC6804 datasheet Table 35, "Discharge Not Permitted")
        paused = any(not dcp and now < done for done, _, _, dcp in self.pending)
        return [0 if asleep or paused or not self.awake[i] else d.dcc() for i, d in enumerate(self.dev)]
