"""Decoding the firmware's event log (firmware/bms/persist/event_log.py):
segment files of 24-byte records with a CRC-32 each."""
from __future__ import annotations

import csv
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from host_tools.firmware import FIRMWARE, micropython_binary

REC = 24
FMT = "<IIHHiI"
CODES = {1: "fault_set", 2: "fault_clear", 3: "contactor", 4: "internal_error", 5: "boot", 6: "fault_restored",
         7: "soc_sync", 8: "capacity_mah", 9: "grid_start", 10: "grid_end", 11: "grid_refused"}
CONTACTOR = ("open", "precharge", "closing", "closed", "locked")


def fault_names() -> list[str]:
    """The fault table's names, asked of the firmware itself."""
    r = subprocess.run([micropython_binary(), "-c", f"import sys, json\nsys.path.insert(0, {str(FIRMWARE)!r})\n"
                        "from bms.faults import NAMES\nprint(json.dumps(NAMES))"], capture_output=True, text=True, timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 else []


def read_dir(state_dir: Path) -> tuple[list[tuple], int]:
    """(valid records oldest first, number of records rejected by their CRC)."""
    out, bad = [], 0
    for seg in sorted((Path(state_dir) / "log").glob("*.seg"), key=lambda p: int(p.stem)):
        data = seg.read_bytes()
        for o in range(0, len(data) - REC + 1, REC):
            rec = data[o:o + REC]
            if struct.unpack_from("<I", rec, REC - 4)[0] != zlib.crc32(rec[:REC - 4]):
                bad += 1
                continue
            out.append(struct.unpack_from(FMT, rec)[:5])
    out.sort()
    return out, bad


def describe(code: int, arg: int, names: list[str]) -> str:
    if code in (1, 2, 6) and arg < len(names):
        return names[arg]
    if code == 3 and arg < len(CONTACTOR):
        return CONTACTOR[arg]
    if code == 5:
        return "watchdog reset" if arg else "power-on"
    if code == 7:
        from host_tools.frames import SYNC_NAMES
        return SYNC_NAMES.get(arg, str(arg))
    if code in (10, 11):
        from host_tools.frames import GRID_REASONS
        return GRID_REASONS.get(arg, str(arg))
    if code == 9:
        return f"{arg} s"
    return str(arg)


def main(state_dir: str, out: str | None) -> int:
    recs, bad = read_dir(Path(state_dir))
    names = fault_names()
    f = open(out, "w", newline="") if out else sys.stdout
    w = csv.writer(f)
    w.writerow(["seq", "t_ms", "event", "what", "value"])
    for seq, t, code, arg, value in recs:
        w.writerow([seq, t, CODES.get(code, code), describe(code, arg, names), value])
    if out:
        f.close()
    print(f"{len(recs)} records, {bad} rejected by their CRC", file=sys.stderr)
    return 0
