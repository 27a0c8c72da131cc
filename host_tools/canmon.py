"""`bmsctl can`: the firmware's inverter frames, decoded live with the
project's DBC (host_tools/can/bms.dbc, cantools), from

- the simulator's CAN bus: the frames file `bmsctl sim --can PROFILE
  --can-frames FILE` writes (the MCP2515 model's bus, one line per frame);
  followed as it grows, like `tail -f`;
- a real bus through python-can: `--port socketcan:can0`,
  `--port slcan:/dev/ttyACM0` (a USB-CAN adapter; 500 kbit/s) or any
  python-can interface as INTERFACE:CHANNEL.

`--log FILE` writes every frame in the candump -L format,
"(seconds) can0 351#1402740E740ECC01" (python-can's CanutilsLogReader reads
it back, the test proves it; SavvyCAN imports candump logs: UNVERIFIED with
this file), or, with a .asc suffix, Vector ASC (python-can's ASCWriter).
The candump lines are written here rather than by python-can's
CanutilsLogWriter, which appends a direction flag (" R") that plain
candump does not write."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import can
import cantools

from host_tools.inverter import DBC

PYTHON_CAN_INTERFACES = ("socketcan", "slcan", "virtual", "pcan", "kvaser", "gs_usb", "serial", "udp_multicast")


class CanPortError(ValueError):
    pass


def _file_frames(path: Path, follow: bool, stop):
    """(t_s, id, bytes) from a simulator frames file."""
    partial = ""
    with open(path) as f:
        while not stop():
            chunk = f.read()
            if not chunk:
                if not follow:
                    return
                time.sleep(0.05)
                continue
            lines = (partial + chunk).split("\n")
            partial = lines.pop()
            for n, ln in enumerate(lines):
                parts = ln.split()
                try:
                    t_us, cid, data = float(parts[0]), int(parts[1], 16), bytes.fromhex(parts[2] if len(parts) > 2 else "")
                except (ValueError, IndexError):
                    raise CanPortError(f"{path}: not a frames line: {ln!r}") from None
                yield t_us / 1e6, cid, data


def _bus_frames(spec: str, stop):
    iface, _, channel = spec.partition(":")
    try:
        bus = can.Bus(interface=iface, channel=channel or None, bitrate=500000)
    except (can.CanError, ValueError, OSError, ImportError) as e:
        raise CanPortError(f"--port {spec}: cannot open the CAN interface: {e}") from None
    try:
        while not stop():
            m = bus.recv(0.2)
            if m is None or m.is_error_frame or m.is_remote_frame:
                continue
            yield m.timestamp, m.arbitration_id, bytes(m.data)
    finally:
        bus.shutdown()


def frames(port: str, follow: bool = True, stop=lambda: False):
    iface = port.partition(":")[0]
    if iface in PYTHON_CAN_INTERFACES and ":" in port:
        return _bus_frames(port, stop)
    p = Path(port)
    if not p.exists():
        raise CanPortError(f"--port {port}: no such frames file, and not INTERFACE:CHANNEL "
                           f"({', '.join(PYTHON_CAN_INTERFACES)})")
    return _file_frames(p, follow, stop)


class _CandumpWriter:
    def __init__(self, path):
        self.f = open(path, "w")

    def on_message_received(self, m):
        self.f.write(f"({m.timestamp:.6f}) can0 {m.arbitration_id:03X}#{bytes(m.data).hex().upper()}\n")

    def stop(self):
        self.f.close()


def describe(db, cid: int, data: bytes) -> str:
    try:
        msg = db.get_message_by_frame_id(cid)
    except KeyError:
        return f"{cid:03X} [{len(data)}] {data.hex(' ')}  (not in the DBC)"
    try:
        fields = db.decode_message(cid, data, decode_choices=True, allow_truncated=True)
    except Exception as e:  # noqa: a bad frame is shown, not fatal
        return f"{cid:03X} {msg.name} [{len(data)}] {data.hex(' ')}  (does not decode: {e})"
    if msg.name == "BMS_Name":
        text = bytes(int(fields[f"Name{k}"]) for k in range(8) if f"Name{k}" in fields).decode("ascii", "replace")
        return f"{cid:03X} {msg.name}: {text!r}"
    units = {s.name: s.unit or "" for s in msg.signals}
    shown = " ".join(f"{k}={v:g}{units[k]}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in fields.items())
    return f"{cid:03X} {msg.name}: {shown}"


def run(port: str, log: str | None = None, duration: float | None = None, follow: bool = True, out=sys.stdout) -> int:
    db = cantools.database.load_file(str(DBC))
    t_end = None if duration is None else time.monotonic() + duration
    stop = (lambda: False) if t_end is None else (lambda: time.monotonic() >= t_end)
    writer = None
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        writer = can.ASCWriter(log) if log.endswith(".asc") else _CandumpWriter(log)
    n = 0
    try:
        for t, cid, data in frames(port, follow, stop):
            print(f"{t:12.3f}  {describe(db, cid, data)}", file=out, flush=True)
            if writer is not None:
                writer.on_message_received(can.Message(timestamp=t, arbitration_id=cid, is_extended_id=False,
                                                       data=data, dlc=len(data)))
            n += 1
            if stop():
                break
    except KeyboardInterrupt:
        pass
    finally:
        if writer is not None:
            writer.stop()
    print(f"{n} frames" + (f", logged to {log}" if log else ""), file=out)
    return 0
