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
         7: "soc_sync", 8: "capacity_mah", 9: "grid_start", 10: "grid_end", 11: "grid_refused",
         12: "soc_record_distrusted", 13: "remote_command", 14: "auth"}
# firmware/bms/state.py AUTH_* (EV_AUTH arg)
AUTH = ("failed", "session_opened", "key_rotated", "maintenance_repl")
# firmware/bms/mqtt_service.py COMMANDS (EV_REMOTE_CMD arg)
REMOTE = ("reserve", "grid_start", "grid_cancel", "clear")
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
    if code == 13:
        return (REMOTE[arg] if arg < len(REMOTE) else str(arg)) + " (mqtt)"
    if code == 14:
        return AUTH[arg] if arg < len(AUTH) else str(arg)
    if code == 12:
        return "above the cells' range" if arg == 1 else "below the cells' range"
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


def console_command(port: str, command: str, timeout_s: float = 20, key: bytes | None = None) -> list[str]:
    """Sends one console command to a running board and returns its reply
    lines (telemetry in between is skipped); raises on ERR or no reply.
    key: a production board's key; the handshake runs first."""
    import time

    import serial

    word = command.split()[0]
    with serial.Serial(port, 115200, timeout=0.2) as s:
        s.reset_input_buffer()
        if key is not None:
            from host_tools.auth import open_session
            open_session(s, key)
        s.write(b"\n" + command.encode() + b"\n")
        deadline = time.monotonic() + timeout_s
        buf = b""
        lines: list[str] = []
        while time.monotonic() < deadline:
            buf += s.read(4096)
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip()
                if not line or line.startswith("{"):
                    continue  # telemetry and boot lines
                if line == "OK " + word:
                    return lines
                if line.startswith("ERR " + word + ":"):
                    raise RuntimeError(line)
                if line.startswith("ERR "):
                    continue  # a reply to noise that was on the line before
                lines.append(line)
    raise RuntimeError(f"no reply to {command!r} from {port} within {timeout_s:.0f} s (is the firmware running?)")


def main_port(port: str, out: str | None, n: int | None = None, key: bytes | None = None) -> int:
    """The event log read through the console's `log` command, decoded."""
    try:
        lines = console_command(port, "log" + (f" {n}" if n else ""), key=key)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not lines or lines[0] != "seq,t_ms,code,arg,value":
        print(f"error: unexpected reply to log: {lines[:2]}", file=sys.stderr)
        return 2
    names = fault_names()
    f = open(out, "w", newline="") if out else sys.stdout
    w = csv.writer(f)
    w.writerow(["seq", "t_ms", "event", "what", "value"])
    bad = 0
    for line in lines[1:]:
        try:
            seq, t, code, arg, value = (int(x) for x in line.split(","))
        except ValueError:
            bad += 1
            continue
        w.writerow([seq, t, CODES.get(code, code), describe(code, arg, names), value])
    if out:
        f.close()
    print(f"{len(lines) - 1 - bad} records from {port}" + (f", {bad} unreadable lines" if bad else ""), file=sys.stderr)
    return 0 if not bad else 1
