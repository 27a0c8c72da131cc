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
from bms import ticks
from array import array
from micropython import const
from bms import VERSION
from bms import faults as F
from bms import signals as S

MAX_LINE = const(160)
IN_BUDGET = const(512)  # bytes taken per service() call
CTRL_C = const(3)
LOG_MAX = const(200)  # newest records printed by `log` without an argument

HELP = (
    "help                      this list",
    "version                   firmware version",
    "status                    pack summary",
    "cells                     cell voltages (mV) and balancing",
    "faults                    active faults",
    "clear                     clear latched faults whose cause is gone",
    "config get [KEY]          show settings (all, or one)",
    "config set KEY VALUE      change a setting (validated, then applied and saved)",
    "log [N]                   the newest N event-log records (CSV)",
    "telemetry off|MS          telemetry period in ms (0 or off: none)",
    "grid start WATTS MINUTES  start a grid-support discharge event",
    "grid cancel               end the grid-support event now",
    "grid status               the grid-support state",
)
CONTACTOR = ("open", "precharge", "closing", "closed", "locked")
# State.grid_reason (bms/state.py GRID_*)
GRID_REASONS = ("none", "ended at its deadline", "ended at the reserve", "cancelled", "refused or ended: contactors open, discharge blocked or a fault",
                "refused: bad arguments", "refused: an event is already running", "refused: SOC not known yet",
                "refused or ended: the lowest cell at the OCV of the reserve")


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
        if b == CTRL_C:
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
        try:
            self.run(cmd, words[1:], now_ms)
        except CommandError as e:
            self._err(cmd, str(e))
            return
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: a bug in a command must not stop the loop
            self._err(cmd, "internal error: " + repr(e))
            return
        self.port.write("OK " + cmd + "\n")

    def _err(self, cmd, msg):
        self.errors += 1
        self.port.write("ERR " + cmd + ": " + msg + "\n")

    # -- commands ---------------------------------------------------------
    def run(self, cmd, args, now_ms):
        f = getattr(self, "cmd_" + cmd, None) if cmd.isalpha() else None
        if f is None:
            raise CommandError("unknown command (try help)")
        f(args, now_ms)

    def _no_args(self, args):
        if args:
            raise CommandError("takes no arguments, got " + repr(" ".join(args)))

    def cmd_help(self, args, now_ms):
        self._no_args(args)
        for h in HELP:
            self.port.write(h + "\n")

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

    def cmd_config(self, args, now_ms):
        if not args or args[0] not in ("get", "set"):
            raise CommandError("expected 'config get [KEY]' or 'config set KEY VALUE'")
        if args[0] == "get":
            if len(args) > 2:
                raise CommandError("config get takes at most one key")
            cfg = self.app.cfg
            keys = (args[1],) if len(args) == 2 else sorted(k for k in dir(cfg) if not k.startswith("_"))
            for k in keys:
                v = getattr(cfg, k, None)
                if v is None or callable(v):
                    raise CommandError("unknown setting " + repr(k))
                self.port.write("%s = %s\n" % (k, _fmt(v)))
            return
        if len(args) != 3:
            raise CommandError("expected 'config set KEY VALUE'")
        key, text = args[1], args[2]
        value = _parse(text)
        new_raw = dict(self.raw)
        new_raw[key] = value
        try:
            cfg = self.build_cfg(new_raw)  # validated first: nothing changes on an error
        except ValueError as e:  # ConfigError is a ValueError
            raise CommandError(str(e))
        old = self.app.cfg
        later = cfg.cells != old.cells or cfg.temps != old.temps
        if later and self.store is None:
            raise CommandError("changing cells/temps needs a saved configuration and a reboot; no store on this board")
        if self.store is not None:
            try:
                self.store.save(new_raw)  # saved before applied, so a reboot keeps it
            except OSError as e:
                raise CommandError("could not save the configuration: " + str(e))
        if not later:
            self.app.reconfigure(cfg)
        self.raw = new_raw
        self.port.write("%s = %s%s\n" % (key, _fmt(getattr(cfg, key, value)),
                                          " (saved; takes effect after a reboot)" if later else ""))

    def cmd_log(self, args, now_ms):
        if len(args) > 1:
            raise CommandError("expected 'log [N]'")
        n = LOG_MAX
        if args:
            n = _parse(args[0])
            if type(n) is not int or n < 1:
                raise CommandError("N must be a positive integer, got " + repr(args[0]))
        if self.log is None:
            raise CommandError("no event log on this board (no filesystem configured)")
        recs = self.log.records()
        self.port.write("seq,t_ms,code,arg,value\n")
        for r in recs[-n:] if n < len(recs) else recs:
            self.port.write("%d,%d,%d,%d,%d\n" % r)

    def cmd_telemetry(self, args, now_ms):
        if len(args) != 1:
            raise CommandError("expected 'telemetry off' or 'telemetry MS'")
        v = 0 if args[0] == "off" else _parse(args[0])
        if type(v) is not int or v < 0 or v > 3600000 or (0 < v < 100):
            raise CommandError("period must be 'off', 0 or 100..3600000 ms, got " + repr(args[0]))
        self.telemetry_ms = v
        self.last_tl = None

    def cmd_grid(self, args, now_ms):
        app = self.app
        if not hasattr(app, "grid_start"):
            raise CommandError("grid-support events are not available in this firmware")
        if not args:
            raise CommandError("expected 'grid start WATTS MINUTES', 'grid cancel' or 'grid status'")
        sub = args[0]
        if sub == "start":
            if len(args) != 3:
                raise CommandError("expected 'grid start WATTS MINUTES'")
            p = _parse(args[1])
            t = _parse(args[2])
            if type(p) is not int or type(t) is not int:
                raise CommandError("WATTS and MINUTES must be integers, got %r %r" % (args[1], args[2]))
            try:
                app.grid_start(now_ms, p, t * 60)
            except ValueError as e:
                raise CommandError(str(e))
        elif sub == "cancel":
            if len(args) != 1:
                raise CommandError("grid cancel takes no arguments")
            if not app.grid_cancel(now_ms):
                raise CommandError("no grid event is running")
        elif sub == "status":
            if len(args) != 1:
                raise CommandError("grid status takes no arguments")
        else:
            raise CommandError("unknown grid command " + repr(sub))
        st = app.state
        if st.grid_active:
            left_s = ticks.diff(st.grid_end_ms, now_ms) // 1000
            self.port.write("grid active: %d W, %d s left, ends at the latest at %s SOC or the lowest cell at %d mV\n" % (
                st.grid_power_w, left_s if left_s > 0 else 0, _soc(st.grid_floor_cpct), st.grid_vfloor_mv))
        else:
            self.port.write("grid idle; last event: %s\n" % (
                GRID_REASONS[st.grid_reason] if st.grid_reason < len(GRID_REASONS) else str(st.grid_reason)))
        self.port.write("grid exported %d Wh this event, %d Wh in all; reserve %s\n" % (
            st.grid_mwh_event // 1000, st.grid_wh_total, _soc(app.cfg.grid_reserve_cpct)))

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
            w(',"grid":%d,"grid_w":%d,"grid_wh_total":%d' % (st.grid_active, st.grid_power_w, st.grid_wh_total))
        w("}\n")


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


def _fmt(v):
    if isinstance(v, (list, tuple, array)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _dc(v):
    s = "-" if v < 0 else ""
    v = -v if v < 0 else v
    return "%s%d.%d" % (s, v // 10, v % 10)


def _soc(cpct):
    if cpct < 0:
        return "unknown"
    return "%d.%02d %%" % (cpct // 100, cpct % 100)
