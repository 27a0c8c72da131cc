# The event log: fixed-size binary records (sequence number, timestamp,
# event code, argument, value, CRC-32) appended to segment files of
# SEG_RECORDS records each, at most max_segments of them. The oldest segment
# goes when the newest one starts, and also when the filesystem is full: a
# full filesystem costs the oldest records, never an exception to the
# caller, so logging can never stop the protection.
#
# drain() moves new events from the tick's RAM ring (State.events) to flash;
# the board runner calls it outside the tick, so flash writes never stall
# protection. Buffers are preallocated.
import os
import struct
from micropython import const
from bms.persist.crc import crc32
from bms.state import EVENTS

REC = const(24)  # bytes per record
FMT = "<IIHHiI"  # seq, t_ms, code, arg, value, pad (then the CRC)
SEG_RECORDS = const(32)
ENOSPC = const(28)


class EventLog:
    def __init__(self, vfs_path, max_segments=16):
        self.dir = vfs_path.rstrip("/") + "/log"
        self.max_segments = max_segments
        self.buf = bytearray(REC)
        self.dropped = 0  # records lost to a full filesystem or an error
        self.sent = 0  # State.ev_total already moved to flash
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        segs = self._segments()
        self.next_seq = 0
        self.seg_name = None
        self.seg_count = 0
        if segs:
            last = segs[-1]
            recs = self._read_segment(last)
            self.seg_name = last
            self.seg_count = self._size(last) // REC
            self.next_seq = (recs[-1][0] + 1) if recs else int(last.split(".")[0])
            if not recs:
                # the newest segment holds nothing readable: continue after
                # the one before, if any
                for s in reversed(segs[:-1]):
                    r = self._read_segment(s)
                    if r:
                        self.next_seq = max(self.next_seq, r[-1][0] + 1)
                        break

    def _segments(self):
        try:
            names = [n for n in os.listdir(self.dir) if n.endswith(".seg")]
        except OSError:
            return []
        names.sort(key=lambda n: int(n.split(".")[0]))
        return names

    def _size(self, name):
        try:
            return os.stat(self.dir + "/" + name)[6]
        except OSError:
            return 0

    def _read_segment(self, name):
        out = []
        try:
            with open(self.dir + "/" + name, "rb") as f:
                data = f.read()
        except OSError:
            return out
        for o in range(0, len(data) - REC + 1, REC):
            rec = data[o:o + REC]
            if struct.unpack_from("<I", rec, REC - 4)[0] != crc32(rec[:REC - 4]):
                continue  # torn or corrupted: never accepted
            seq, t, code, arg, value, _ = struct.unpack_from(FMT, rec, 0)
            out.append((seq, t, code, arg, value))
        return out

    def records(self):
        """All valid records, oldest first."""
        out = []
        for name in self._segments():
            out.extend(self._read_segment(name))
        out.sort()
        return out

    def _drop_oldest(self):
        segs = self._segments()
        if len(segs) <= 1:
            return False
        try:
            os.remove(self.dir + "/" + segs[0])
        except OSError:
            return False
        return True

    def append(self, t_ms, code, arg, value):
        """Appends one record; True when it reached the flash."""
        b = self.buf
        struct.pack_into(FMT, b, 0, self.next_seq, t_ms & 0xFFFFFFFF, code & 0xFFFF, arg & 0xFFFF, value, 0)
        struct.pack_into("<I", b, REC - 4, crc32(memoryview(b)[:REC - 4]))
        for _ in range(3):
            try:
                if self.seg_name is None or self.seg_count >= SEG_RECORDS:
                    self.seg_name = "%d.seg" % self.next_seq
                    self.seg_count = 0
                    while len(self._segments()) >= self.max_segments:
                        if not self._drop_oldest():
                            break
                with open(self.dir + "/" + self.seg_name, "ab") as f:
                    f.write(b)
                self.seg_count += 1
                self.next_seq += 1
                return True
            except OSError as e:
                if e.args and e.args[0] == ENOSPC and self._drop_oldest():
                    continue  # a full filesystem: make room from the oldest
                break
        self.dropped += 1
        self.next_seq += 1  # keep sequence numbers honest about the gap
        return False

    def drain(self, st, limit=8):
        """Moves up to `limit` new events from the tick's RAM ring to flash."""
        new = (st.ev_total - self.sent) & 0x3FFFFFFF
        if new > EVENTS:
            self.dropped += new - EVENTS
            self.sent = (st.ev_total - EVENTS) & 0x3FFFFFFF
            new = EVENTS
        n = 0
        ev = st.events
        i = (st.ev_head - new) % EVENTS
        while n < new and n < limit:
            j = i * 4
            self.append(ev[j], ev[j + 1], ev[j + 2], ev[j + 3])
            i = (i + 1) % EVENTS
            n += 1
        self.sent = (self.sent + n) & 0x3FFFFFFF
        return n
