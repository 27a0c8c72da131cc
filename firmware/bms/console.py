# The serial console: line commands and JSON telemetry on the board's USB
# serial (stdin/stdout), served between ticks, never inside one.
#
# Protocol (host tools rely on it):
# - A command is one line of printable ASCII ended by CR or LF. Its reply is
#   zero or more text lines, then exactly one status line:
#   "OK <command word>" or "ERR <command word>: <reason>".
# - Telemetry is one JSON object per line, starting with '{"tl":'. Replies
#   and telemetry are written whole, one line at a time by this one loop, so
#   they never interleave mid-line.
# - Input of any kind is safe: bytes outside printable ASCII spoil their line
#   (answered with ERR, nothing executed), a line longer than MAX_LINE is
#   dropped whole (ERR), at most IN_BUDGET bytes are taken per call so a
#   flood cannot hold up the next tick, and only a valid command changes
#   anything. Ctrl-C (0x03) raises KeyboardInterrupt, as on a board whose
#   USB stack turns it into one; the main loop then makes the outputs safe.
# - Production mode (board.json "mode": "production", `root` set): Ctrl-C is
#   an ordinary byte (the firmware runs with micropython.kbd_intr(-1)) and
#   spoils its line; only the commands in OPEN (and config get, grid
#   status) run without a session; every other one needs `auth` first
#   (bms/auth.py) or, from MQTT, a valid MAC (execute(..., authed=True)).
# The commands a running pack needs at any moment (status, cells, faults,
# version, clear) and the telemetry are resident; the rarely used ones
# (help, config, log, telemetry, grid) are in bms/console_cmds.py and
# bms/console_config.py, loaded for the command and dropped after it.
from bms import ticks
from micropython import const
from bms import VERSION
from bms import faults as F
from bms import signals as S

MAX_LINE = const(160)
IN_BUDGET = const(512)  # bytes taken per service() call
CTRL_C = const(3)

# commands in bms/console_cmds.py (config: bms/console_config.py), loaded
# when one of them is called
RARE = ("help", "config", "log", "telemetry", "grid")
LOCK = ("auth", "logout", "key", "repl")  # bms/auth.py
# what a production board runs without a session: reads, and the handshake
OPEN = ("status", "cells", "faults", "log", "telemetry", "version", "help", "auth", "logout")
CONTACTOR = ("open", "precharge", "closing", "closed", "locked")
class CommandError(Exception):
    pass


class Console:
    """app: the App; port: read_into(buf, n) -> bytes read (never blocks)
    and write(str); raw_cfg: the user configuration (a dict) the app was
    built from; build_cfg: dict -> validated Config (raises ConfigError);
    store: a ConfigStore or None; log: an EventLog or None."""

    def __init__(self, app, port, raw_cfg, build_cfg, store=None, log=None, telemetry_ms=1000):
        self.app = app
        self.port = port
        self.raw = raw_cfg
        self.build_cfg = build_cfg
        self.store = store
        self.log = log
        self.line = bytearray(MAX_LINE)
        self.n = 0
        self.spoilt = False  # the line so far holds a non-text byte
        self.overflow = False  # the line so far is too long: drop it whole
        self.inbuf = bytearray(64)
        self.telemetry_ms = telemetry_ms
        self.last_tl = None
        self.lines = 0  # command lines handled
        self.tl_seq = 0  # telemetry lines sent
        self.errors = 0  # lines answered with ERR
        # production lock (bms/auth.py); root None: bench mode, nothing locked
        self.root = None
        self.challenge = None
        self.challenge_t = 0
        self.session_end = None
        self.session_nonce = None
        self.auth_fails = -1  # failed attempts in a row; -1: not read from flash yet (bms/auth.py)
        self.auth_fails_unsaved = 0  # failures the filesystem did not take
        self.auth_retry = None
        self.maintenance = False  # `repl` asked for the REPL: the runner does not reset
        self.mqtt_ctr = None

    # -- input ------------------------------------------------------------
    def service(self, now_ms):
        """Reads what is waiting (up to IN_BUDGET bytes), runs complete
        commands, then sends telemetry if it is due."""
        budget = IN_BUDGET
        buf = self.inbuf
        while budget > 0:
            got = self.port.read_into(buf, len(buf) if budget > len(buf) else budget)
            if not got:
                break
            budget -= got
            for i in range(got):
                self.feed(buf[i], now_ms)
        self.telemetry(now_ms)

    def feed(self, b, now_ms):
        if b == 10 or b == 13:
            if self.n or self.spoilt or self.overflow:
                self._end_line(now_ms)
            return
        if b == CTRL_C and self.root is None:
            self.n = 0
            raise KeyboardInterrupt
        if b == 8 or b == 127:  # backspace, for people typing in a terminal
            if self.n:
                self.n -= 1
            return
        if b < 32 or b > 126:
            self.spoilt = True
            return
        if self.n >= MAX_LINE:
            self.overflow = True
            return
        self.line[self.n] = b
        self.n += 1

    def _end_line(self, now_ms):
        n = self.n
        spoilt = self.spoilt
        overflow = self.overflow
        self.n = 0
        self.spoilt = False
        self.overflow = False
        self.lines += 1
        if overflow:
            self._err("line", "longer than %d characters, ignored" % MAX_LINE)
            return
        if spoilt:
            self._err("line", "contains bytes that are not printable ASCII, ignored")
            return
        text = bytes(self.line[:n]).decode()
        words = text.split()
        if not words:
            return
        cmd = words[0].lower()
        err = self.execute(text, now_ms, None, self.session(now_ms))
        if err is not None:
            self._err(cmd, err)
            return
        self.port.write("OK " + cmd + "\n")

    def session(self, now_ms):
        """True while an authenticated console session is open."""
        if self.session_end is None:
            return False
        if ticks.diff(self.session_end, now_ms) > 0:
            return True
        self.session_end = None  # expired
        self.session_nonce = None
        return False

    def execute(self, text, now_ms, port=None, authed=False):
        """The one command path: the serial line and every service between
        ticks (MQTT) run their commands here, with the same validation.
        Reply lines go to `port` (write(str)), by default the serial line.
        authed: the caller has authenticated the command (a console session,
        an MQTT MAC); in production mode only reads run without it.
        Returns None when the command succeeded, else the reason."""
        words = text.split()
        if not words:
            return "empty command"
        cmd = words[0].lower()
        if self.root is not None and not authed and not _open(cmd, words):
            return "locked (production mode): open a session first (auth)"
        saved = self.port
        if port is not None:
            self.port = port
        try:
            self.run(cmd, words[1:], now_ms)
        except CommandError as e:
            return str(e)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: a bug in a command must not stop the loop
            return "internal error: " + repr(e)
        finally:
            self.port = saved
        return None

    def _err(self, cmd, msg):
        self.errors += 1
        self.port.write("ERR " + cmd + ": " + msg + "\n")

    # -- commands ---------------------------------------------------------
    def run(self, cmd, args, now_ms):
        f = getattr(self, "cmd_" + cmd, None) if cmd.isalpha() else None
        if f is not None:
            f(args, now_ms)
        elif cmd in RARE or cmd in LOCK:
            # loaded for this command only (bms/console_cmds.py, bms/console_config.py, bms/auth.py)
            import sys
            from bms.config import drop
            mod = "bms.console_config" if cmd == "config" else "bms.auth" if cmd in LOCK else "bms.console_cmds"
            loaded = [mod] if mod not in sys.modules else []
            try:
                f = getattr(__import__(mod, None, None, ("x",)), "cmd_" + cmd)
                f(self, args, now_ms)
            finally:
                f = None
                drop(loaded)
        else:
            raise CommandError("unknown command (try help)")

    def _no_args(self, args):
        if args:
            raise CommandError("takes no arguments, got " + repr(" ".join(args)))

    def cmd_version(self, args, now_ms):
        self._no_args(args)
        self.port.write("version " + VERSION + "\n")

    def cmd_status(self, args, now_ms):
        self._no_args(args)
        st = self.app.state
        sig = st.sig
        w = self.port.write
        w("contactors %s, outputs %d\n" % (CONTACTOR[st.contactor_state] if st.contactor_state < len(CONTACTOR) else "?", st.outputs))
        w("pack %d mV, current %d mA, soc %s, capacity %d mAh%s\n" % (
            sig[S.PACK_MV], sig[S.CURRENT_MA], _soc(st.soc_cpct), st.capacity_mah or self.app.cfg.capacity_mah,
            " (estimated)" if st.capacity_learned else " (rated)"))
        w("cells min %d mV (#%d), max %d mV (#%d), spread %d mV\n" % (
            sig[S.CELL_MIN_MV], sig[S.CELL_MIN_IDX] + 1, sig[S.CELL_MAX_MV], sig[S.CELL_MAX_IDX] + 1, sig[S.CELL_SPREAD_MV]))
        w("temps min %s, max %s degC; coolant in %s, out %s degC\n" % (
            _dc(sig[S.TEMP_MIN_DC]), _dc(sig[S.TEMP_MAX_DC]), _dc(sig[S.COOLANT_IN_DC]), _dc(sig[S.COOLANT_OUT_DC])))
        w("limits charge %d mA, discharge %d mA\n" % (st.ccl_ma, st.dcl_ma))
        w("pump %d per mille, flow %d Hz, heater %s\n" % (st.pump_duty_pm, sig[S.FLOW_HZ], "on" if st.heater_on else "off"))
        w("balancing %d cells; faults %d active\n" % (st.balance_count, st.n_active))

    def cmd_cells(self, args, now_ms):
        self._no_args(args)
        st = self.app.state
        for i in range(st.n_cells):
            self.port.write("%d %d%s\n" % (i + 1, st.cell_mv[i], " bleeding" if st.balance_mask[i] else ""))

    def cmd_faults(self, args, now_ms):
        self._no_args(args)
        st = self.app.state
        sev = ("", "warning", "fault", "critical")
        for i in range(F.N_FAULTS):
            if st.fault_active[i]:
                row = F.TABLE[i]
                self.port.write("%s %s%s\n" % (row[0], sev[row[3]] if row[3] < 4 else "?", " latched" if row[5] else ""))

    def cmd_clear(self, args, now_ms):
        self._no_args(args)
        self.app.state.clear_req = 1  # the protect stage acts on it in the next tick

    # -- telemetry --------------------------------------------------------
    def telemetry(self, now_ms):
        if not self.telemetry_ms:
            return
        if self.last_tl is not None and ticks.diff(now_ms, self.last_tl) < self.telemetry_ms:
            return
        self.last_tl = now_ms
        self.write_telemetry(now_ms)

    def write_telemetry(self, now_ms):
        # Written in pieces so no large string is built; one line all the same.
        st = self.app.state
        sig = st.sig
        w = self.port.write
        self.tl_seq += 1
        w('{"tl":%d,"t":%d,"cells":[' % (self.tl_seq, now_ms))
        for i in range(st.n_cells):
            w("%d," % st.cell_mv[i] if i + 1 < st.n_cells else "%d" % st.cell_mv[i])
        w('],"bal":[')
        for i in range(st.n_cells):
            w("%d," % st.balance_mask[i] if i + 1 < st.n_cells else "%d" % st.balance_mask[i])
        w('],"temps_dc":[')
        for i in range(st.n_temps):
            w("%d," % st.temp_dc[i] if i + 1 < st.n_temps else "%d" % st.temp_dc[i])
        w('],"cool_dc":[%d,%d],"i_ma":%d,"pack_mv":%d,"soc_cpct":%d,"ccl_ma":%d,"dcl_ma":%d,'
          '"pump_pm":%d,"flow_hz":%d,"heater":%d,"contactor":"%s","faults":[' % (
              sig[S.COOLANT_IN_DC], sig[S.COOLANT_OUT_DC], sig[S.CURRENT_MA], sig[S.PACK_MV], st.soc_cpct,
              st.ccl_ma, st.dcl_ma, st.pump_duty_pm, sig[S.FLOW_HZ], st.heater_on,
              CONTACTOR[st.contactor_state] if st.contactor_state < len(CONTACTOR) else "?"))
        first = True
        for i in range(F.N_FAULTS):
            if st.fault_active[i]:
                w(('"%s"' if first else ',"%s"') % F.NAMES[i])
                first = False
        w("]")
        if hasattr(st, "grid_active"):
            # grid_mwh: this (or the last) event's export as the firmware counts it, the
            # delivered energy a gateway reports (bmsctl gateway)
            w(',"grid":%d,"grid_w":%d,"grid_wh_total":%d,"grid_mwh":%d' % (
                st.grid_active, st.grid_power_w, st.grid_wh_total, st.grid_mwh_event))
        w("}\n")


def _open(cmd, words):
    if cmd in OPEN:
        return True
    sub = words[1] if len(words) > 1 else ""
    return (cmd == "config" and sub == "get") or (cmd == "grid" and sub == "status" and len(words) == 2)


def _parse(text):
    """An int, true/false, or a string; JSON-ish, without eval."""
    if text == "true":
        return True
    if text == "false":
        return False
    t = text[1:] if text[:1] in "+-" else text
    if t.isdigit():
        return int(text)
    return text


def _dc(v):
    s = "-" if v < 0 else ""
    v = -v if v < 0 else v
    return "%s%d.%d" % (s, v // 10, v % 10)


def _soc(cpct):
    if cpct < 0:
        return "unknown"
    return "%d.%02d %%" % (cpct // 100, cpct % 100)
