# The firmware's clock arithmetic, the same on every port: milliseconds
# modulo 2**30, the period of a board's time.ticks_ms(). The 64-bit unix
# port's ticks_* do not wrap there (its ticks_diff(0, 2**30 - 1000) is
# -1073740824), so the HALs feed wrap(ticks_ms()) and the stages use diff()
# and add() from here, never time.ticks_*. Every intermediate value stays a
# small int on a 32-bit port (31 bits): adding 2**29 modulo 2**30 is
# flipping bit 29, so no sum ever reaches 2**30.
from micropython import const

MASK = const(0x3FFFFFFF)  # 2**30 - 1
_HALF = const(0x20000000)  # 2**29


def wrap(ms):
    """A clock reading (any int) as a time in [0, 2**30)."""
    return ms & MASK


def diff(a, b):
    """a - b in ms for times a, b in [0, 2**30), within [-2**29, 2**29)."""
    return (((a - b) & MASK) ^ _HALF) - _HALF


def add(a, delta_ms):
    """The time delta_ms (|delta_ms| < 2**29) after time a in [0, 2**30)."""
    return ((a - _HALF + delta_ms) & MASK) ^ _HALF
