# On the 32-bit port, whose time.ticks_* wrap at 2**30 natively: bms.ticks
# must agree with them everywhere, and its arithmetic never allocate (no
# intermediate big int). Prints "ok N" or the first disagreement.
import time
import micropython
from bms import ticks

M = 0x3FFFFFFF
EDGES = (0, 1, 2, 0x1FFFFFFF, 0x20000000, 0x20000001, M - 1, M)
DELTAS = (0, 1, -1, 100, -100, 86400000, -86400000, 0x1FFFFFFF, -0x1FFFFFFF)


def check(a, b, d):
    if ticks.diff(a, b) != time.ticks_diff(a, b):
        return "diff(%d, %d): %d, native %d" % (a, b, ticks.diff(a, b), time.ticks_diff(a, b))
    if ticks.add(a, d) != time.ticks_add(a, d):
        return "add(%d, %d): %d, native %d" % (a, d, ticks.add(a, d), time.ticks_add(a, d))
    if ticks.wrap(a + 0) != a:
        return "wrap(%d)" % a
    return None


def run():
    n = 0
    for a in EDGES:
        for b in EDGES:
            for d in DELTAS:
                bad = check(a, b, d)
                if bad:
                    return bad
                n += 1
    x = 12345
    for _ in range(20000):
        x = (x * 1103515245 + 12345) & M
        a = x
        x = (x * 1103515245 + 12345) & M
        b = x
        d = (x & 0x1FFFFFFF) - 0x10000000
        bad = check(a, b, d)
        if bad:
            return bad
        n += 1
    # no allocation: the arithmetic stays in small ints at the edges
    micropython.heap_lock()
    try:
        s = 0
        for a in EDGES:
            for b in EDGES:
                s ^= ticks.diff(a, b)
                for d in DELTAS:
                    s ^= ticks.add(a, d)
    except MemoryError:
        micropython.heap_unlock()
        return "ticks arithmetic allocated (a big int) under heap_lock"
    micropython.heap_unlock()
    return "ok %d" % n


print(run())
