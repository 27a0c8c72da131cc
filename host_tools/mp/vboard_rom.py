# The virtual board's "ROM": what a MicroPython port's C main loop does on a
# board, written for the unix port so that `mpremote` and the monitor talk to
# the virtual board exactly as to a Pico on /dev/ttyACM0.
#
# Runs under MicroPython with the board's filesystem as the working
# directory and the serial line on stdin/stdout (a pipe from the host-side
# pseudo-terminal proxy, host_tools/vboard.py). Behaviour follows
# micropython/shared/runtime/pyexec.c:
# - power-up / soft reset in the friendly REPL: run main.py, then the REPL;
# - friendly REPL: banner, ">>> ", Ctrl-A raw REPL, Ctrl-B banner, Ctrl-C
#   new line, Ctrl-D soft reset, Ctrl-E paste mode;
# - raw REPL: "raw REPL; CTRL-B to exit", ">" prompt, Ctrl-D runs the
#   buffer ("OK", output, 0x04, error, 0x04) or, on an empty buffer, soft
#   resets; raw-paste mode (Ctrl-E 'A' Ctrl-A) with flow control.
# A soft reset prints "MPY: soft reboot" and exits with EXIT_SOFT_FRIENDLY or
# EXIT_SOFT_RAW; the host restarts a fresh process, as a board restarts its
# interpreter, in the REPL mode the reset was made from. machine.reset() is
# a hard reset: the process exits with EXIT_HARD_RESET and the host starts
# it afresh from power-up (main.py runs), whatever code was running.
# Ctrl-C while main.py runs: the ROM does not read the serial line then, the
# firmware's console does (bms/console.py) and raises KeyboardInterrupt for
# 0x03 unless the firmware turned that off with micropython.kbd_intr(-1)
# (production mode), as on a board: with kbd_intr(-1) the port's USB/UART
# driver passes 0x03 on as an ordinary byte, and Ctrl-A (raw REPL) is
# only seen by pyexec once main.py has returned.
import sys

EXIT_SOFT_FRIENDLY = 3
EXIT_SOFT_RAW = 4
EXIT_HARD_RESET = 5
BANNER = "MicroPython v%d.%d.%d on virtual-board; BMS virtual board with unix port" % sys.implementation.version[:3]
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_WINDOW = 128

fin = sys.stdin.buffer
fout = sys.stdout.buffer


def out(b):
    if isinstance(b, str):
        b = b.encode()
    fout.write(b)


def getc():
    c = fin.read(1)
    if not c:
        raise EOFError
    return c[0]


def new_globals():
    return {"__name__": "__main__"}


class BoardOs:
    """The unix port's os module as a board's VFS presents it: "" names the
    current directory and ilistdir() gives sizes (mpremote relies on both)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def stat(self, path):
        return self._real.stat(path or ".")

    def listdir(self, path="."):
        return self._real.listdir(path or ".")

    def ilistdir(self, path="."):
        path = path or "."
        for e in self._real.ilistdir(path):
            size = 0
            if e[1] == 0x8000:
                try:
                    size = self._real.stat(path + "/" + e[0])[6]
                except OSError:
                    pass
            yield (e[0], e[1], e[2] if len(e) > 2 else 0, size)


class SoftReset(Exception):
    pass


class HardReset(BaseException):
    """machine.reset(): nothing may catch it on the way out (it is not an
    Exception), as nothing runs after the chip resets."""


class BoardMachine:
    """The unix port's machine module plus reset(), as on a board."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def reset(self):
        raise HardReset


def execute(src, g, kind):
    """Compiles and runs like parse_compile_execute with PRINT_EOF."""
    try:
        exec(compile(src, "<stdin>", kind), g)
        out(b"\x04")
    except HardReset:
        raise
    except SystemExit:
        out(b"\x04\x04")
        raise SoftReset
    except BaseException as e:  # noqa: the user's code may raise anything
        out(b"\x04")
        sys.print_exception(e, sys.stdout)
    out(b"\x04")


def raw_paste(g):
    out(b"R\x01")
    out(bytes((PASTE_WINDOW & 0xFF, PASTE_WINDOW >> 8, 1)))
    buf = bytearray()
    remain = PASTE_WINDOW
    while True:
        c = getc()
        if c == 3 or c == 4:
            out(b"\x04")
            if c == 3:
                out(b"\x04")
                sys.print_exception(KeyboardInterrupt(), sys.stdout)
                out(b"\x04")
                return
            break
        buf.append(c)
        remain -= 1
        if remain == 0:
            out(b"\x01")
            remain = PASTE_WINDOW
    execute(bytes(buf), g, "exec")


def raw_repl(g):
    """Returns when Ctrl-B leaves for the friendly REPL."""
    out(RAW_BANNER)
    line = bytearray()
    out(b">")
    while True:
        c = getc()
        if c == 1:
            if len(line) == 2 and line[0] == 5:
                if line[1] == ord("A"):
                    raw_paste(g)
                else:
                    out(b"R\x00")
                line = bytearray()
                out(b">")
                continue
            line = bytearray()
            out(RAW_BANNER)
            out(b">")
        elif c == 2:
            out(b"\r\n")
            return
        elif c == 3:
            line = bytearray()
        elif c == 4:
            out(b"OK")
            if not line:
                out(b"\r\n")
                raise SoftReset
            execute(bytes(line), g, "exec")
            line = bytearray()
            out(b">")
        else:
            line.append(c)


def needs_more(src):
    s = src.rstrip()
    return s.endswith(":") or s.endswith("\\")


def friendly_repl(g):
    """Returns when Ctrl-A asks for the raw REPL."""
    out(BANNER + "\r\nType \"help()\" for more information.\r\n")
    lines = []
    cur = bytearray()
    out(">>> ")
    while True:
        c = getc()
        if c == 1 and not lines and not cur:
            out(b"\r\n")
            return
        if c == 2 and not lines and not cur:
            out(b"\r\n" + BANNER.encode() + b"\r\nType \"help()\" for more information.\r\n>>> ")
        elif c == 3:
            out(b"\r\n>>> ")
            lines = []
            cur = bytearray()
        elif c == 4:
            if not lines and not cur:
                out(b"\r\n")
                raise SoftReset
            out(b"\r\n")
            src = "\n".join(lines + [bytes(cur).decode()])
            _run_single(src, g)
            lines = []
            cur = bytearray()
            out(">>> ")
        elif c == 5 and not lines and not cur:
            _paste_mode(g)
            out(">>> ")
        elif c == 13 or c == 10:
            out(b"\r\n")
            text = bytes(cur).decode()
            cur = bytearray()
            if lines:
                if text.strip():
                    lines.append(text)
                    out("... ")
                    continue
                src = "\n".join(lines)
                lines = []
            else:
                if not text.strip():
                    out(">>> ")
                    continue
                if needs_more(text):
                    lines = [text]
                    out("... ")
                    continue
                src = text
            _run_single(src, g)
            out(">>> ")
        elif c == 8 or c == 127:
            if cur:
                cur = cur[:-1]
                out(b"\x08 \x08")
        elif c >= 32 or c == 9:
            cur.append(c)
            out(bytes((c,)))


def _run_single(src, g):
    try:
        code = compile(src + "\n", "<stdin>", "single")
    except SyntaxError as e:
        sys.print_exception(e, sys.stdout)
        return
    try:
        exec(code, g)
    except HardReset:
        raise
    except SystemExit:
        raise SoftReset
    except BaseException as e:  # noqa: shown to the user, as a board does
        sys.print_exception(e, sys.stdout)


def _paste_mode(g):
    out(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
    buf = bytearray()
    while True:
        c = getc()
        if c == 3:
            out(b"\r\n")
            return
        if c == 4:
            out(b"\r\n")
            break
        buf.append(c)
        out(b"\r\n=== " if c == 13 else bytes((c,)))
    try:
        exec(compile(bytes(buf).replace(b"\r", b"\n"), "<stdin>", "exec"), g)
    except BaseException as e:  # noqa
        sys.print_exception(e, sys.stdout)


def run_main(g):
    try:
        with open("main.py") as f:
            src = f.read()
    except OSError:
        return
    g["__file__"] = "main.py"
    try:
        exec(compile(src, "main.py", "exec"), g)
    except HardReset:
        raise
    except KeyboardInterrupt:
        out(b"\r\nKeyboardInterrupt\r\n")
    except SystemExit:
        pass
    except BaseException as e:  # noqa: a crash of main.py ends in the REPL, as on a board
        sys.print_exception(e, sys.stdout)


def main():
    import os
    sys.modules["os"] = BoardOs(os)
    import machine
    sys.modules["machine"] = BoardMachine(machine)
    raw = "--raw" in sys.argv
    if "." not in sys.path:
        sys.path.insert(0, ".")
    if "lib" not in sys.path:
        sys.path.append("lib")  # a board's /lib: libraries `bmsctl flash` installs (the MQTT client)
    g = new_globals()
    try:
        if not raw:
            run_main(g)  # its globals stay for the REPL, as on a board
        while True:
            if raw:
                raw_repl(g)
                raw = False
            else:
                friendly_repl(g)
                raw = True
    except SoftReset:
        out(b"MPY: soft reboot\r\n")
        sys.exit(EXIT_SOFT_RAW if raw else EXIT_SOFT_FRIENDLY)
    except HardReset:
        sys.exit(EXIT_HARD_RESET)
    except EOFError:
        sys.exit(0)


main()
