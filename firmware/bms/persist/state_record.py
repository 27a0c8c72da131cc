# The state record: what the pack must remember across a reset (latched
# faults, SOC, capacity estimate, energy counters). Two slots written in
# turn, each a fixed-size binary record with a sequence number and a CRC-32;
# load() takes the valid slot with the higher sequence number, so a torn
# write costs at most the newest save. Saved at a bounded rate and at once
# on important events (a fault latching or clearing).
import struct
from micropython import const
from bms.persist.crc import crc32
from bms import ticks

MAGIC_V1 = const(0x42535452)  # "BSTR"
MAGIC = const(0x32535452)  # "BST2": adds the grid-export total
# magic, seq, soc (0.01 %), capacity mAh, energy in Wh, energy out Wh,
# grid energy exported Wh, latched fault bits (8 bytes), flags, then the
# CRC-32 of all that. Version 1 (no grid field) is still read.
FMT_V1 = "<IIiiii8sI"
FMT = "<IIiiiii8sI"
SIZE_V1 = struct.calcsize(FMT_V1) + 4
SIZE = struct.calcsize(FMT) + 4


class StateRecord:
    def __init__(self):
        self.seq = 0
        self.soc_cpct = -1
        self.capacity_mah = 0
        self.energy_in_wh = 0
        self.energy_out_wh = 0
        self.grid_wh = 0
        self.latched = bytearray(8)
        self.flags = 0

    def pack(self, buf):
        struct.pack_into(FMT, buf, 0, MAGIC, self.seq, self.soc_cpct, self.capacity_mah,
                         self.energy_in_wh, self.energy_out_wh, self.grid_wh, bytes(self.latched), self.flags)
        n = SIZE - 4
        struct.pack_into("<I", buf, n, crc32(memoryview(buf)[:n]))

    def unpack(self, buf):
        n = len(buf) - 4
        if len(buf) not in (SIZE, SIZE_V1) or struct.unpack_from("<I", buf, n)[0] != crc32(memoryview(buf)[:n]):
            return False
        if len(buf) == SIZE:
            magic, seq, soc, cap, ein, eout, grid, latched, flags = struct.unpack_from(FMT, buf, 0)
            if magic != MAGIC:
                return False
        else:
            magic, seq, soc, cap, ein, eout, latched, flags = struct.unpack_from(FMT_V1, buf, 0)
            grid = 0
            if magic != MAGIC_V1:
                return False
        self.grid_wh = grid
        self.seq, self.soc_cpct, self.capacity_mah = seq, soc, cap
        self.energy_in_wh, self.energy_out_wh, self.flags = ein, eout, flags
        self.latched[:] = latched
        return True


class StateStore:
    def __init__(self, vfs_path, min_interval_ms=300000):
        base = vfs_path.rstrip("/") + "/state."
        self.slots = (base + "a", base + "b")
        self.buf = bytearray(SIZE)
        self.min_interval_ms = min_interval_ms
        self.last_ms = None

    def load(self):
        """The newest valid record, or None when neither slot holds one."""
        best = None
        for p in self.slots:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            r = StateRecord()
            if r.unpack(data) and (best is None or r.seq > best.seq):
                best = r
        return best

    def save(self, rec):
        """Writes rec with the next sequence number into the older slot."""
        rec.seq += 1
        rec.pack(self.buf)
        with open(self.slots[rec.seq & 1], "wb") as f:
            f.write(self.buf)

    def due(self, now_ms, important):
        # a bounded rate: at most one routine save per min_interval_ms
        if important or self.last_ms is None or ticks.diff(now_ms, self.last_ms) >= self.min_interval_ms:
            self.last_ms = now_ms
            return True
        return False
