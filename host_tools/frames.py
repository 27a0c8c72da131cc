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


def actuator_struct(cells: int) -> struct.Struct:
    return struct.Struct(f"<HBBIBBHBBiihH{FAULT_BYTES}s{(cells + 7) // 8}s")


def bits(data: bytes, n: int) -> list[int]:
    return [(data[i >> 3] >> (i & 7)) & 1 for i in range(n)]
