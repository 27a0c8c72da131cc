# Locked stand-by (production lock, issue 19): what a production board does
# when its start-up fails (board.json or config.json missing or invalid,
# the HAL or the front end not built, any exception before the control loop
# runs). A bench board goes back to the REPL as before; a production board
# must not, or an attacker with a USB cable only has to make the start-up
# fail (or catch it failing) to get the REPL. So here, in this order:
#   1. every output safe: contactors open (positive, precharge, negative),
#      balancing off, pump and heater off, before anything else;
#   2. Ctrl-C stays an ordinary byte (micropython.kbd_intr(-1)) and main.py
#      never returns, so the port's REPL (and its raw REPL) never runs;
#   3. a minimal console on the same serial protocol: `status` says what
#      failed and where ("standby: config: ..."), `version`, `help`, and
#      the same `auth` challenge-response with the same key.bin as the
#      normal console (bms/auth.py, its persisted back-off included); in a
#      session `repl` (maintenance: the REPL, as from the running firmware,
#      so `bmsctl flash --key-file` works on a board in stand-by) and
#      `reset`.
# Why not a reset loop: with a bad configuration every start-up fails the
# same way, so it never ends, shows nothing between the resets and wears
# the flash with every boot's writes; the stand-by says what is wrong and
# waits for someone with the key.
#
# This module is loaded only when a start-up has failed: it costs no RAM on
# a running board.
import sys
import os
from bms import ticks
from bms import VERSION
from bms.console import Console, CommandError

KEY_FILE = "key.bin"  # bms/auth.py KEY_FILE (auth is not loaded for this check)
HINT_MS = 10000  # the stand-by line is repeated this often, for a host that connects later
POLL_MS = 20
# the commands of the stand-by console; `reset` and `repl` need a session
# (they are not in bms.console.OPEN)
COMMANDS = ("status", "version", "help", "auth", "logout", "repl", "reset")
HELP = (
    "status                    why the start-up failed (stand-by: outputs safe, nothing runs)",
    "version                   firmware version",
    "auth [RESPONSE]           open a session with the pack key (bmsctl does it)",
    "logout                    end the session",
    "repl                      maintenance: the REPL (in a session)",
    "reset                     start again, e.g. after a fix (in a session)",
)


def locked(root, board):
    """Whether a failed start-up must stay locked. board: board.json's
    content, or None when it could not be read. Read, its mode decides as
    for a running board (anything but "bench" is locked). Unreadable, the
    mode is unknown, and the board fails closed: a key file on the
    filesystem means the board was provisioned for production (`bmsctl
    flash` writes key.bin only for a production board), so it is treated as
    one; without a key file there is nothing to unlock a stand-by with, and
    the board is a bench board (REPL, as before)."""
    if isinstance(board, dict):
        return board.get("mode", "bench") != "bench"
    try:
        os.stat(root + "/" + KEY_FILE)
        return True
    except OSError:
        return False


def safe_outputs(board, hal, machine):
    """Contactors open, balancing off, pump and heater off, in that order;
    never raises. With a HAL built (the failure came later) through its
    drivers; otherwise the pins board.json names are driven inactive (a
    pin not yet touched since the reset is an input, so the driver is off
    anyway, but a fan-type pump input floats to full speed). Balancing on a
    bus front end without its HAL: the LTC681x ends it by itself (its
    watchdog resets the DCC bits after ~2 s without commands, DS6804); a
    BQ76952 left balancing by the previous run is not stopped here
    (unverified on hardware: see README)."""
    if hal is not None and hasattr(hal, "io"):
        for f in (hal.io.off, hal.fe.safe, getattr(hal.pump, "off", None)):
            if f is not None:
                try:
                    f()
                except Exception:  # noqa: the safe state goes on whatever failed
                    pass
        if hal.heater is not None:
            _set(hal.heater[0], hal.heater[1])
        return
    if not isinstance(board, dict) or board.get("hal") != "board":
        return  # the virtual board: its link is closed, the plant drops the coils
    if machine is None:
        try:
            import machine
        except ImportError:
            return
    con = board.get("contactors")
    con = con if isinstance(con, dict) else {}
    afe = board.get("afe")
    bleed = afe.get("bleed") if isinstance(afe, dict) else None
    pump = board.get("pump")
    outs = [con.get("pos"), con.get("pre"), con.get("neg")]
    if isinstance(bleed, list):
        outs += [{"pin": p} for p in bleed]
    outs.append({"pin": pump.get("pwm")} if isinstance(pump, dict) else None)  # no PWM: held low
    outs.append(board.get("heater"))
    for d in outs:
        if isinstance(d, dict) and "pin" in d:
            try:
                machine.Pin(d["pin"], machine.Pin.OUT, value=1 if d.get("active_low") is True else 0)
            except Exception:  # noqa: a bad pin entry (maybe why the start-up failed)
                pass


def _set(pin, value):
    try:
        pin.value(value)
    except Exception:  # noqa
        pass


class _State:
    """The stand-by has no App: the lock's events are not recorded (the
    event log belongs to the start-up that failed)."""

    def event(self, now_ms, code, arg, value):
        pass


class _NoApp:
    def __init__(self):
        self.state = _State()


class StandbyConsole(Console):
    def __init__(self, port, root, what):
        Console.__init__(self, _NoApp(), port, None, None, None, None, 0)
        self.root = root  # locked: reads and the handshake only without a session
        self.what = what
        self.reset_asked = False

    def run(self, cmd, args, now_ms):
        if cmd not in COMMANDS:
            raise CommandError("not available in stand-by: the start-up failed (see status)")
        Console.run(self, cmd, args, now_ms)

    def cmd_status(self, args, now_ms):
        self._no_args(args)
        self.port.write("standby: " + self.what + "\n")
        self.port.write("outputs safe: contactors open, balancing off, pump and heater off; nothing runs\n")

    def cmd_help(self, args, now_ms):
        self._no_args(args)
        for h in HELP:
            self.port.write(h + "\n")

    def cmd_reset(self, args, now_ms):
        self._no_args(args)
        self.reset_asked = True
        self.port.write("OK reset\n")
        raise KeyboardInterrupt  # leaves the loop; enter() resets


def _line(port, what):
    import json
    port.write(json.dumps({"standby": what}) + "\n")


def enter(root, board, what, hal=None, machine=None, clock=None, port=None, wdt=None, max_loops=-1):
    """The stand-by of a locked board whose start-up failed (`what`: where
    and why). Returns only for maintenance (`repl` in a session: the
    caller's main.py ends, the REPL follows) or after max_loops (tests)."""
    safe_outputs(board, hal, machine)
    import micropython
    micropython.kbd_intr(-1)  # again: the failure may have come before the start-up set it
    if clock is None:
        import time as clock
    if port is None:
        from bms.stdio_port import StdioPort
        port = StdioPort()
    port.ctrl_c_stops = False
    con = StandbyConsole(port, root, what)
    last = None
    n = 0
    while n != max_loops:
        now = ticks.wrap(clock.ticks_ms())
        if last is None or ticks.diff(now, last) >= HINT_MS:
            last = now
            _line(port, what)
        try:
            con.service(now)
        except KeyboardInterrupt:  # only `repl` or `reset` in a session raise it (Ctrl-C is a byte)
            if con.reset_asked:
                if machine is None:
                    import machine
                machine.reset()
            if con.maintenance:
                micropython.kbd_intr(3)  # maintenance: the REPL takes Ctrl-C again
                return con
        if wdt is not None:
            wdt.feed()  # started before the failure: it cannot be stopped, and a reset loop is what this avoids
        clock.sleep_ms(POLL_MS)
        n += 1
    return con
