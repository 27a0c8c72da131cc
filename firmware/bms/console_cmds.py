# The console's rarely used commands (help, log, telemetry, grid; config is
# in bms/console_config.py):
# bms/console.py loads this module for one of them and drops it again after
# the command, so its code is not resident on the board between commands.
# Each command is a function of the Console (self), its arguments and the
# time, as the resident ones are methods.
from bms import ticks
from micropython import const
from bms.console import CommandError, _parse, _soc

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
# State.grid_reason (bms/state.py GRID_*)
GRID_REASONS = ("none", "ended at its deadline", "ended at the reserve", "cancelled", "refused or ended: contactors open, discharge blocked or a fault",
                "refused: bad arguments", "refused: an event is already running", "refused: SOC not known yet",
                "refused or ended: the lowest cell at the OCV of the reserve")


def cmd_help(self, args, now_ms):
    self._no_args(args)
    for h in HELP:
        self.port.write(h + "\n")


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
