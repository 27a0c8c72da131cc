"""Wire format of the sim HAL (must match firmware/bms/hal/sim.py)."""
from __future__ import annotations

import struct

SENSOR_MAGIC = 0xB5A1
ACT_MAGIC = 0xB5A2
VERSION = 1
FAULT_BYTES = 8
TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms() wraps here


def sensor_struct(cells: int, temps: int) -> struct.Struct:
    return struct.Struct(f"<HBBII{cells}H{temps}HiIIHHHBB")


IN_ENABLE = 8  # inputs byte: enable input on
IN_CHARGER = 16  # inputs byte: a charge source is present
ACT_HEAD = struct.Struct(f"<HBBIBBHBBiihH{FAULT_BYTES}sBBH")
EV_OFF = 34
EV_SLOTS = 8
EVENT = struct.Struct("<iHHi")  # firmware ms, code, arg, value
ACT_FIXED = EV_OFF + 4 + EV_SLOTS * EVENT.size

# event codes (firmware/bms/state.py)
EV_FAULT_SET, EV_FAULT_CLEAR, EV_CONTACTOR, EV_INTERNAL, EV_BOOT, EV_RESTORED = 1, 2, 3, 4, 5, 6


def actuator_size(cells: int) -> int:
    return ACT_FIXED + (cells + 7) // 8


def bits(data: bytes, n: int) -> list[int]:
    return [(data[i >> 3] >> (i & 7)) & 1 for i in range(n)]
