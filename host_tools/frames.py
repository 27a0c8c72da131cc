"""Wire format of the sim HAL (must match firmware/bms/hal/sim.py)."""
from __future__ import annotations

import struct

SENSOR_MAGIC = 0xB5A1
ACT_MAGIC = 0xB5A2
VERSION = 2
FAULT_BYTES = 8
TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms() wraps here


def sensor_struct(cells: int, temps: int) -> struct.Struct:
    # ... inputs, pad, then the command: kind (1 grid start, 2 grid cancel), pad, pad, arg a, arg b
    return struct.Struct(f"<HBBII{cells}H{temps}HiIIHHHBBBBHii")


CMD_GRID_START = 1
CMD_GRID_CANCEL = 2


IN_ENABLE = 8  # inputs byte: enable input on
IN_CHARGER = 16  # inputs byte: a charge source is present
ACT_HEAD = struct.Struct(f"<HBBIBBHBBiihH{FAULT_BYTES}sBBH")
EV_OFF = 34
EV_SLOTS = 8
EVENT = struct.Struct("<iHHi")  # firmware ms, code, arg, value
GRID_OFF = EV_OFF + 4 + EV_SLOTS * EVENT.size
GRID = struct.Struct("<iiiBBBB")  # export mA, event mWh, capacity mAh, active, reason, soc sync, pad
ACT_FIXED = GRID_OFF + GRID.size

# event codes (firmware/bms/state.py)
EV_FAULT_SET, EV_FAULT_CLEAR, EV_CONTACTOR, EV_INTERNAL, EV_BOOT, EV_RESTORED = 1, 2, 3, 4, 5, 6
EV_SOC_SYNC, EV_CAPACITY, EV_GRID_START, EV_GRID_END, EV_GRID_REJECT = 7, 8, 9, 10, 11
EV_SOC_DISTRUST = 12
SYNC_NAMES = {1: "full", 2: "empty", 3: "ocv", 4: "boot_ocv", 5: "cells"}
GRID_REASONS = {1: "deadline", 2: "reserve", 3: "cancelled", 4: "blocked", 5: "bad_args", 6: "busy", 7: "soc_unknown", 8: "voltage"}


def actuator_size(cells: int) -> int:
    return ACT_FIXED + (cells + 7) // 8


def actuator_struct(cells: int) -> struct.Struct:
    """The whole actuator frame in one unpack: ACT_HEAD, the EV_SLOTS event
    slots (all present, n_ev of them valid), GRID, the balance bits."""
    s = struct.Struct("<" + ACT_HEAD.format[1:] + EVENT.format[1:] * EV_SLOTS + GRID.format[1:]
                      + f"{(cells + 7) // 8}s")
    assert s.size == actuator_size(cells) and ACT_HEAD.size == EV_OFF + 4
    return s


def bits(data: bytes, n: int) -> list[int]:
    return [(data[i >> 3] >> (i & 7)) & 1 for i in range(n)]
