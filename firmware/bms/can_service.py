# The inverter CAN service, between ticks: every period_ms (1 s default)
# the profile's frames go out, built from the latest tick's state; the
# inverter's keep-alive frames are tracked. It never waits: a full TX
# buffer, a missing ACK (error passive) and bus-off are counted, and the
# frames of a period that do not fit the controller's three buffers go out
# in the next calls. Frames from the bus are read at most RX_MAX per call:
# unknown ids, wrong lengths and floods are counted and change nothing.
# It hands the tick two inputs, the signals INVERTER_SILENT and CAN_BUS
# (warning rows); protection does not depend on the bus at all.
#
# The driver is any CAN driver with the interface of bms/drivers/mcp2515.py
# (start, send, pending, recv, state).
import time
from array import array
from micropython import const
from bms import can_profiles as P
from bms import faults as F
from bms import signals as S

RX_MAX = const(8)  # frames read per call: bounds a flood's cost
RESTART_MIN_MS = const(1000)  # back-off of a controller restart, doubling
RESTART_MAX_MS = const(32000)

# driver constants (bms/drivers/mcp2515.py; the same in every CAN driver)
TX_OK = const(0)
TX_FULL = const(1)
TX_BUS_OFF = const(2)
ST_PASSIVE = const(2)
ST_BUS_OFF = const(3)
ST_ERROR = const(4)


class CanConfigError(ValueError):
    pass


def _err(key, msg):
    raise CanConfigError("board.can." + key + ": " + msg)


def _int(d, key, default, lo, hi):
    v = d.get(key, default)
    if type(v) is not int or v is True or v is False:
        _err(key, "expected an integer, got " + repr(v))
    if not lo <= v <= hi:
        _err(key, "%d outside %d..%d" % (v, lo, hi))
    return v


def settings(d, cfg):
    """The `can` section of a board config (dict) -> validated settings.
    Raises CanConfigError naming the field; nothing else happens then."""
    if not isinstance(d, dict):
        _err("", "expected an object, got " + repr(d))
    prof = d.get("profile", "pylontech")
    if prof not in P.PROFILES:
        _err("profile", "expected one of %s, got %r" % (", ".join(sorted(P.PROFILES)), prof))
    dflt = P.DEFAULTS[prof]
    name = d.get("name", dflt["name"])
    if not isinstance(name, str) or not 1 <= len(name) <= 8 or any(not 32 <= ord(c) < 127 for c in name):
        _err("name", "expected 1..8 printable ASCII characters, got " + repr(name))
    for bad in P.FORBIDDEN_NAMES.get(prof, ()):
        if name.upper().startswith(bad):
            _err("name", "%r makes a Victron system override the BMS's limits (dvcc.py brand detection)" % name)
    lo_mv, hi_mv = cfg.dcl_taper_mv[1], cfg.ccl_taper_mv[0]
    s = {
        "profile": prof,
        "name": name,
        "crystal_hz": _int(d, "crystal_hz", 8000000, 8000000, 16000000),
        "period_ms": _int(d, "period_ms", 1000, 100, 10000),
        "silent_ms": _int(d, "silent_ms", 5000, 1000, 600000),
        "zero_limit_da": _int(d, "zero_limit_da", dflt["zero_limit_da"], 0, 10),
        # the highest cell stops here (default: where the charge limit starts to taper)
        "cvl_cell_mv": _int(d, "cvl_cell_mv", hi_mv, lo_mv + 1, hi_mv),
        "dvl_cell_mv": _int(d, "dvl_cell_mv", lo_mv, lo_mv, hi_mv - 1),
        "modules": _int(d, "modules", 1, 1, 255),
    }
    if s["crystal_hz"] not in (8000000, 16000000):
        _err("crystal_hz", "expected 8000000 or 16000000, got %d" % s["crystal_hz"])
    if s["dvl_cell_mv"] >= s["cvl_cell_mv"]:
        _err("dvl_cell_mv", "must be below cvl_cell_mv (%d mV)" % s["cvl_cell_mv"])
    return s


def _rows(table):
    out = []
    for entry in table:
        out.append((entry[0], tuple(F.index(n) for n in entry[1])))
    return tuple(out)


class CanService:
    def __init__(self, app, drv, s, now_ms=0, clock=time):
        self.app = app
        self.st = app.state
        self.drv = drv
        self.clock = clock
        self.cfg = app.cfg
        self.frames = P.PROFILES[s["profile"]]
        self.profile = s["profile"]
        self.period = s["period_ms"]
        self.silent_ms = s["silent_ms"]
        self.zero_da = s["zero_limit_da"]
        self.cvl_cell = s["cvl_cell_mv"]
        self.dvl_cell = s["dvl_cell_mv"]
        self.modules = s["modules"]
        nm = bytearray(b"        ")
        for i in range(len(s["name"])):
            nm[i] = ord(s["name"][i])
        self.name = bytes(nm)
        self.prot = _rows(P.PYLON_PROT)
        self.alarm = _rows(P.PYLON_ALARM)
        self.pairs = tuple((e[0], tuple(F.index(n) for n in e[1]), tuple(F.index(n) for n in e[2]))
                           for e in P.VICTRON_PAIRS)
        self.vals = array("i", [0] * P.N_VALUES)
        self.buf = bytearray(8)
        self.rx = bytearray(8)
        # counters (all reported by the console / bench / tests)
        self.sent = 0
        self.tx_full = 0  # frames not queued: all three TX buffers busy
        self.tx_late = 0  # frames of a period still unsent when the next began
        self.passive = 0  # periods started with the controller error passive (no ACK)
        self.bus_off = 0  # periods started bus-off
        self.restarts = 0
        self.start_errors = 0
        self.rx_ok = 0
        self.rx_unknown = 0
        self.rx_bad_dlc = 0
        self.rx_floods = 0  # calls that stopped at RX_MAX with frames still waiting
        self.silences = 0
        self.victron_seen = 0
        self.last_state = 0
        self.up = 0
        self.cursor = len(self.frames)  # nothing to send until the first period
        self.next_send = now_ms
        self.heard_ms = now_ms  # the timeout counts from the start
        self.silent = 0
        self.restart_ms = now_ms
        self.backoff = RESTART_MIN_MS
        self.busoff_since = -1
        self._start(now_ms)

    # -- controller ---------------------------------------------------------------------
    def _start(self, now_ms):
        err = self.drv.start()
        if err:
            self.start_errors += 1
            self.up = 0
            self.restart_ms = time.ticks_add(now_ms, self.backoff)
            self.backoff = min(self.backoff * 2, RESTART_MAX_MS)
            self.st.sig[S.CAN_BUS] = 1
        else:
            self.up = 1
            self.backoff = RESTART_MIN_MS
            self.st.sig[S.CAN_BUS] = 0
        return err

    # -- values from the latest tick ------------------------------------------------------
    def _flags(self, rows):
        fa = self.st.fault_active
        v = 0
        for mask, idx in rows:
            for i in idx:
                if fa[i]:
                    v |= mask
                    break
        return v

    def _limit(self, ma):
        da = ma // 100
        return da if da > 0 else self.zero_da

    def values(self):
        st = self.st
        sig = st.sig
        v = self.vals
        cfg = self.cfg
        n = st.n_cells
        vmax = sig[S.CELL_MAX_MV]
        total = sig[S.CELL_SUM_MV]
        # CVL: the pack voltage at which the highest cell would reach
        # cvl_cell_mv if every cell rose with it: n x target less the gaps
        # of the lower cells to the highest. One cell running ahead lowers
        # it; never below the DVL floor (CVL 0 is a discharge order to some
        # inverters, diyBMS #175).
        cvl = n * self.cvl_cell
        dyn = total + n * (self.cvl_cell - vmax)
        if st.valid_scans and dyn < cvl:
            cvl = dyn
        floor = n * self.dvl_cell
        if cvl < floor:
            cvl = floor
        v[P.V_CVL_DV] = cvl // 100
        v[P.V_CCL_DA] = self._limit(st.ccl_ma)
        v[P.V_DCL_DA] = self._limit(st.dcl_ma)
        v[P.V_DVL_DV] = floor // 100
        soc = st.soc_cpct
        if soc < 0:
            soc = 0
        v[P.V_SOC_PCT] = soc // 100
        v[P.V_SOC_CPCT] = soc
        soh = 100
        if st.capacity_learned and cfg.capacity_mah:
            soh = st.capacity_mah * 100 // cfg.capacity_mah
            soh = 0 if soh < 0 else (100 if soh > 100 else soh)
        v[P.V_SOH_PCT] = soh
        # s16 at 0.01 V: a low-voltage protocol; a pack above 327.67 V reads
        # the maximum rather than wrapping negative
        v[P.V_PACK_CV] = total // 10 if total < 327670 else 32767
        c = sig[S.CURRENT_MA]
        v[P.V_CUR_DA] = c // 100 if c >= 0 else -((-c) // 100)
        v[P.V_TEMP_DC] = sig[S.TEMP_MAX_DC]
        v[P.V_PROT] = self._flags(self.prot)
        v[P.V_ALARM] = self._flags(self.alarm)
        v[P.V_MODULES] = self.modules
        req = 0
        if st.ccl_ma > 0:
            req |= 0x80
        if st.dcl_ma > 0:
            req |= 0x40
        v[P.V_REQ] = req
        fa = st.fault_active
        alo = ahi = wlo = whi = 0xAAAA
        for pos, arows, wrows in self.pairs:
            sh = (pos & 7) << 1
            on = 0
            for i in arows:
                if fa[i]:
                    on = 1
                    break
            if on:
                if pos < 8:
                    alo = (alo & ~(3 << sh)) | (1 << sh)
                else:
                    ahi = (ahi & ~(3 << sh)) | (1 << sh)
            on = 0
            for i in wrows:
                if fa[i]:
                    on = 1
                    break
            if on:
                if pos < 8:
                    wlo = (wlo & ~(3 << sh)) | (1 << sh)
                else:
                    whi = (whi & ~(3 << sh)) | (1 << sh)
        v[P.V_VA_LO] = alo
        v[P.V_VA_HI] = ahi
        v[P.V_VW_LO] = wlo
        v[P.V_VW_HI] = whi
        v[P.V_CELL_MIN_MV] = sig[S.CELL_MIN_MV]
        v[P.V_CELL_MAX_MV] = vmax
        v[P.V_TMIN_K] = (sig[S.TEMP_MIN_DC] + 2732) // 10
        v[P.V_TMAX_K] = (sig[S.TEMP_MAX_DC] + 2732) // 10
        m = self.modules
        v[P.V_MOD_OK] = m if st.valid_scans else 0
        v[P.V_MOD_BLK_CHG] = m if st.ccl_ma <= 0 else 0
        v[P.V_MOD_BLK_DSG] = m if st.dcl_ma <= 0 else 0
        v[P.V_MOD_OFFLINE] = 0 if st.valid_scans else m
        v[P.V_CAP_AH] = cfg.capacity_mah // 1000
        v[P.V_AVAIL_AH] = st.usable_mah // 1000
        v[P.V_MODEL] = 1
        v[P.V_FW] = 0x0100
        v[P.V_ZERO] = 0

    def encode(self, frame):
        """Fills self.buf with one frame of the profile; returns its DLC."""
        b = self.buf
        v = self.vals
        for i in range(8):
            b[i] = 0
        for off, enc, idx in frame[2]:
            x = v[idx]
            if enc == P.LE16:
                b[off] = x & 0xFF
                b[off + 1] = (x >> 8) & 0xFF
            elif enc == P.BE16:
                b[off] = (x >> 8) & 0xFF
                b[off + 1] = x & 0xFF
            else:
                b[off] = x & 0xFF
        fixed = frame[3]
        if fixed is not None:
            if fixed == P.NAME:
                fixed = self.name
            off = frame[4]
            for i in range(len(fixed)):
                b[off + i] = fixed[i]
        return frame[1]

    # -- between ticks ---------------------------------------------------------------------
    def service(self, now_ms):
        if not self.up:
            if time.ticks_diff(now_ms, self.restart_ms) >= 0:
                self.restarts += 1
                self._start(now_ms)
            self._silence(now_ms)
            return
        self._receive(now_ms)
        self._silence(now_ms)
        if time.ticks_diff(now_ms, self.next_send) >= 0:
            self._period(now_ms)
        if self.up and self.cursor < len(self.frames):
            self._send(now_ms)

    def _receive(self, now_ms):
        d = self.drv
        rx = self.rx
        n = 0
        while n < RX_MAX and d.pending():
            cid = d.recv(rx)
            if cid < 0:
                break
            n += 1
            if cid == 0x305 or cid == 0x306 or cid == 0x307:
                if d.rx_dlc != 8:
                    self.rx_bad_dlc += 1
                    continue
                self.rx_ok += 1
                self.heard_ms = now_ms
                if cid == 0x307 and rx[4] == 0x56 and rx[5] == 0x49 and rx[6] == 0x43:
                    self.victron_seen = 1  # "VIC": a Victron GX
            else:
                self.rx_unknown += 1
        if n == RX_MAX and d.pending():
            self.rx_floods += 1

    def _silence(self, now_ms):
        quiet = time.ticks_diff(now_ms, self.heard_ms) > self.silent_ms
        if quiet and not self.silent:
            self.silences += 1
        self.silent = 1 if quiet else 0
        self.st.sig[S.INVERTER_SILENT] = self.silent

    def _period(self, now_ms):
        self.next_send = time.ticks_add(self.next_send, self.period)
        if time.ticks_diff(now_ms, self.next_send) >= 0:
            self.next_send = time.ticks_add(now_ms, self.period)  # a long stall: start afresh
        if self.cursor < len(self.frames):
            self.tx_late += len(self.frames) - self.cursor
        s = self.drv.state()
        self.last_state = s
        if s == ST_BUS_OFF or s == ST_ERROR:
            self.bus_off += 1
            self.st.sig[S.CAN_BUS] = 1
            if self.busoff_since < 0:
                self.busoff_since = now_ms
            elif time.ticks_diff(now_ms, self.busoff_since) >= self.backoff:
                # the MCP2515 leaves bus-off by itself once the bus is free;
                # still off after the back-off: restart the controller
                self.busoff_since = -1
                self.restarts += 1
                self._start(now_ms)
            self.cursor = len(self.frames)
            return
        self.busoff_since = -1
        self.st.sig[S.CAN_BUS] = 0
        if s == ST_PASSIVE:
            self.passive += 1
        self.cursor = 0

    def _send(self, now_ms):
        self.values()
        frames = self.frames
        d = self.drv
        while self.cursor < len(frames):
            f = frames[self.cursor]
            dlc = self.encode(f)
            r = d.send(f[0], self.buf, dlc)
            if r != TX_OK:
                self.tx_full += 1
                return
            self.sent += 1
            self.cursor += 1


def build(d, app, machine, clock, now_ms):
    """The board config's `can` section -> a running CanService on an
    MCP2515 (SPI mode 0,0, datasheet section 12). A bad entry raises
    CanConfigError naming the field; nothing is built then."""
    if not isinstance(d, dict):
        _err("", "expected an object, got " + repr(d))
    s = settings(d, app.cfg)
    spi = d.get("spi")
    if not isinstance(spi, dict):
        _err("spi", "expected an object with id, sck, mosi, miso")
    for k in ("id", "sck", "mosi", "miso"):
        if k not in spi:
            _err("spi." + k, "missing")
    if "cs" not in d:
        _err("cs", "missing")
    baud = _int(spi, "baudrate", 8000000, 100000, 10000000)  # the MCP2515 takes 10 MHz at most
    from bms.drivers.mcp2515 import MCP2515
    M = machine
    bus = M.SPI(spi["id"], baudrate=baud, polarity=0, phase=0, sck=M.Pin(spi["sck"]), mosi=M.Pin(spi["mosi"]),
                miso=M.Pin(spi["miso"]))
    cs = M.Pin(d["cs"], M.Pin.OUT, value=1)
    irq = M.Pin(d["int"], M.Pin.IN, M.Pin.PULL_UP) if "int" in d else None
    drv = MCP2515(bus, cs, irq, s["crystal_hz"])
    return CanService(app, drv, s, now_ms, clock)
