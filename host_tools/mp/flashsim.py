# A block device that behaves like NOR flash, for littlefs under the
# MicroPython unix port: 4 KiB erase blocks (like the RP2040's and the
# ESP32's flash), erase to 0xFF before program, a program only clears bits,
# and a power cut at a chosen program or erase operation: that operation is
# torn and nothing after it reaches the flash until `dead` is cleared.
import random
import micropython
from bufcopy import copy as _copy

BLOCK = 4096
BLOCKS = 48  # 192 KiB


# littlefs calls the block device with the heap locked at times: copy and
# program without allocating.
@micropython.viper
def _program(dst, a: int, src, n: int):
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[a + i] = d[a + i] & s[i]  # NOR: a program clears bits only
        i += 1


@micropython.viper
def _erase(dst, a: int, n: int):
    d = ptr8(dst)
    i = 0
    while i < n:
        d[a + i] = 0xFF
        i += 1


class Flash:
    def __init__(self):
        self.data = bytearray(b"\xff" * (BLOCK * BLOCKS))
        self.ops = 0
        self.cut_at = -1
        self.cuts = 0
        self.dead = False  # after the cut nothing more reaches the flash

    def _tick(self):
        self.ops += 1
        return self.cut_at >= 0 and self.ops >= self.cut_at

    def readblocks(self, n, buf, off=0):
        _copy(buf, self.data, n * BLOCK + off, len(buf))

    def writeblocks(self, n, buf, off=None):
        if off is None:  # simple interface: erase + program
            self.ioctl(6, n)
            off = 0
        if self.dead:
            return
        a = n * BLOCK + off
        cut = self._tick()
        m = len(buf) if not cut else random.randrange(len(buf) + 1)
        _program(self.data, a, buf, m)
        if cut:
            # The power goes here: this program is torn and nothing after it
            # is stored. (Raising from here would unwind through littlefs's
            # C code with the heap locked, so the device just stops storing.)
            self.cut_at = -1
            self.cuts += 1
            self.dead = True

    def ioctl(self, op, arg):
        if op == 4:
            return BLOCKS
        if op == 5:
            return BLOCK
        if op == 6:  # erase
            if self.dead:
                return 0
            cut = self._tick()
            a = arg * BLOCK
            m = BLOCK if not cut else random.randrange(BLOCK + 1)
            _erase(self.data, a, m)
            if cut:
                self.cut_at = -1
                self.cuts += 1
                self.dead = True
            return 0
        return 0
