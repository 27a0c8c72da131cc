# The console's byte port on the board's USB serial (stdin/stdout): reads
# only what is already waiting, so the loop never blocks on a quiet line.
import sys
import select


class StdioPort:
    def __init__(self, stdin=None, stdout=None):
        self.fin = stdin if stdin is not None else sys.stdin.buffer
        self.fout = stdout if stdout is not None else sys.stdout
        self.poller = select.poll()
        self.poller.register(self.fin, select.POLLIN)
        self.one = bytearray(1)
        self.closed = False  # the host end went away (EOF): stop reading
        self.write_errors = 0
        self.ctrl_c_stops = True  # production mode: 0x03 is an ordinary byte (kbd_intr(-1))

    def read_into(self, buf, n):
        if self.closed:
            return 0
        got = 0
        one = self.one
        while got < n:
            ready = self.poller.poll(0)
            if not ready or not (ready[0][1] & select.POLLIN):
                break
            try:
                r = self.fin.readinto(one)
            except OSError:
                r = None
            if not r:
                self.closed = True  # EOF or a dead port; the loop goes on
                break
            buf[got] = one[0]
            got += 1
            if one[0] == 3 and self.ctrl_c_stops:
                break  # Ctrl-C: what follows it is for the REPL, leave it unread
        return got

    def write(self, text):
        try:
            self.fout.write(text)
        except OSError:
            self.write_errors += 1  # nobody listening: output is dropped, never blocks protection
