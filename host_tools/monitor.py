"""`bmsctl monitor`: a live terminal view of a board (or the virtual board)
over its USB serial console.

It reads the firmware's telemetry (one JSON object per line), shows cell
voltages as bars with balancing marks, temperatures, current, SOC, limits,
pump, contactors and active faults, sends commands typed on standard input
(or given with --send), logs every telemetry line to CSV, reports lines it
cannot parse without stopping, and survives the port disappearing and
coming back (a board unplugged and replugged, a reset).
"""
from __future__ import annotations

import csv
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

BAR_LO_MV, BAR_HI_MV = 2500, 3650  # the bar spans an LFP cell's whole window
BAR_WIDTH = 30


@dataclass
class MonitorState:
    telemetry: dict | None = None
    boot: dict | None = None
    replies: deque = field(default_factory=lambda: deque(maxlen=12))
    bad_lines: deque = field(default_factory=lambda: deque(maxlen=5))
    n_telemetry: int = 0
    n_bad: int = 0
    n_lines: int = 0
    connected: bool = False
    reconnects: int = 0
    last_error: str = ""
    since: float = 0.0


class LineParser:
    """Sorts console lines into telemetry, boot lines, replies and lines
    that cannot be parsed; never raises on any input."""

    def __init__(self, state: MonitorState, csv_path: Path | None = None):
        self.st = state
        self.csv_path = csv_path
        self._csv_file = None
        self._writer = None
        self._cols: list[str] | None = None

    def feed(self, raw: bytes):
        st = self.st
        st.n_lines += 1
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self._bad(raw, "not UTF-8")
            return
        if not line:
            return
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError as e:
                self._bad(raw, f"bad JSON ({e.msg})")
                return
            if isinstance(obj, dict) and "tl" in obj:
                if not isinstance(obj.get("cells"), list):
                    self._bad(raw, "telemetry without cells")
                    return
                st.telemetry = obj
                st.n_telemetry += 1
                self._log(obj)
            elif isinstance(obj, dict) and "boot" in obj:
                st.boot = obj["boot"]
                st.replies.append("boot: " + json.dumps(obj["boot"]))
            else:
                self._bad(raw, "JSON that is neither telemetry nor a boot line")
            return
        if any(ord(c) < 32 and c != "\t" for c in line):
            self._bad(raw, "control characters")
            return
        st.replies.append(line)

    def _bad(self, raw: bytes, why: str):
        self.st.n_bad += 1
        self.st.bad_lines.append(f"{why}: {raw[:60]!r}")

    def _log(self, tl: dict):
        if self.csv_path is None:
            return
        cells = tl.get("cells", [])
        temps = tl.get("temps_dc", [])
        cols = (["host_time", "t_ms", "tl", "contactor", "i_ma", "pack_mv", "soc_cpct", "ccl_ma", "dcl_ma", "pump_pm",
                 "flow_hz", "heater", "faults"] + [f"cell{i + 1}_mv" for i in range(len(cells))]
                + [f"bal{i + 1}" for i in range(len(cells))] + [f"temp{i + 1}_dc" for i in range(len(temps))]
                + ["cool_in_dc", "cool_out_dc"])
        if self._writer is None:
            self._csv_file = open(self.csv_path, "a", newline="")
            self._writer = csv.writer(self._csv_file)
        if cols != self._cols:
            self._writer.writerow(cols)  # a new header when the pack changes (another config flashed)
            self._cols = cols
        cool = tl.get("cool_dc", [None, None])
        self._writer.writerow([f"{time.time():.3f}", tl.get("t"), tl.get("tl"), tl.get("contactor"), tl.get("i_ma"),
                               tl.get("pack_mv"), tl.get("soc_cpct"), tl.get("ccl_ma"), tl.get("dcl_ma"),
                               tl.get("pump_pm"), tl.get("flow_hz"), tl.get("heater"), ";".join(tl.get("faults", []))]
                              + cells + tl.get("bal", [0] * len(cells)) + temps + list(cool))
        self._csv_file.flush()

    def close(self):
        if self._csv_file is not None:
            self._csv_file.close()


def _num(v, scale=1.0, fmt="{:.1f}", unit=""):
    if not isinstance(v, (int, float)):
        return "?"
    return fmt.format(v / scale) + unit


def render(st: MonitorState, port: str = ""):
    tl = st.telemetry or {}
    head = Text()
    head.append(f"{port}  ", style="bold")
    if st.connected:
        head.append("connected", style="green")
    else:
        head.append("waiting for the port" + (f" ({st.last_error})" if st.last_error else ""), style="yellow")
    head.append(f"   telemetry {st.n_telemetry}   unparsable {st.n_bad}   reconnects {st.reconnects}")
    if st.boot:
        head.append(f"\nfirmware {st.boot.get('version', '?')}  board {st.boot.get('board', '?')}  "
                    f"reset {st.boot.get('reset_cause', '?')}")
    cells = Table(title="cells", show_header=True, header_style="bold", box=None, padding=(0, 1))
    cells.add_column("#", justify="right")
    cells.add_column("mV", justify="right")
    cells.add_column("", no_wrap=True)
    cells.add_column("bal")
    cv = tl.get("cells", [])
    bal = tl.get("bal", [])
    lo, hi = (min(cv), max(cv)) if cv else (0, 0)
    for i, mv in enumerate(cv):
        frac = min(max((mv - BAR_LO_MV) / (BAR_HI_MV - BAR_LO_MV), 0.0), 1.0) if isinstance(mv, (int, float)) else 0.0
        n = int(round(frac * BAR_WIDTH))
        style = "red" if mv == hi and hi != lo else ("blue" if mv == lo and hi != lo else "white")
        bleeding = i < len(bal) and bal[i]
        cells.add_row(str(i + 1), str(mv), Text("#" * n + "." * (BAR_WIDTH - n), style=style),
                      Text("B" if bleeding else "", style="magenta"))
    pack = Table(title="pack", show_header=False, box=None, padding=(0, 1))
    pack.add_column("what")
    pack.add_column("value", justify="right")
    soc = tl.get("soc_cpct")
    rows = [
        ("contactors", str(tl.get("contactor", "?"))),
        ("current", _num(tl.get("i_ma"), 1000, "{:+.2f}", " A")),
        ("pack", _num(tl.get("pack_mv"), 1000, "{:.2f}", " V")),
        ("SOC", "unknown" if soc is None or soc < 0 else _num(soc, 100, "{:.1f}", " %")),
        ("charge limit", _num(tl.get("ccl_ma"), 1000, "{:.1f}", " A")),
        ("discharge limit", _num(tl.get("dcl_ma"), 1000, "{:.1f}", " A")),
        ("cells", f"{lo}..{hi} mV (spread {hi - lo})" if cv else "?"),
        ("temperatures", " ".join(_num(t, 10, "{:.1f}") for t in tl.get("temps_dc", [])) + " degC"),
        ("coolant in/out", " / ".join(_num(t, 10, "{:.1f}") for t in tl.get("cool_dc", [])) + " degC"),
        ("pump", _num(tl.get("pump_pm"), 10, "{:.0f}", " %") + f", flow {tl.get('flow_hz', '?')} Hz"),
        ("heater", "on" if tl.get("heater") else "off"),
    ]
    if "grid" in tl:
        rows.append(("grid event", ("active " + str(tl.get("grid_w")) + " W") if tl.get("grid") else "idle"))
        rows.append(("grid exported", f"{tl.get('grid_wh_total', 0)} Wh"))
    for k, v in rows:
        pack.add_row(k, v)
    faults = tl.get("faults", [])
    fault_text = Text(", ".join(faults) if faults else "none", style="bold red" if faults else "green")
    side = Group(pack, Text(""), Text("active faults: ", style="bold") + fault_text)
    grid = Table.grid(padding=(0, 3))
    grid.add_column()
    grid.add_column()
    grid.add_row(cells, side)
    replies = Text("\n".join(st.replies) if st.replies else "(type a command and Enter: help, status, clear, ...)")
    parts = [head, grid, Panel(replies, title="console", border_style="dim")]
    if st.bad_lines:
        parts.append(Text("unparsable: " + " | ".join(st.bad_lines), style="yellow"))
    return Group(*parts)


class SerialReader(threading.Thread):
    """Reads lines from the port, reopening it whenever it goes away."""

    def __init__(self, port: str, parser: LineParser, state: MonitorState, lock: threading.Lock,
                 key: bytes | None = None):
        super().__init__(daemon=True, name="serial-reader")
        self.port = port
        # a production board's key: commands wait for a session, which the
        # reader opens (auth, challenge, response) and renews before it ends
        self.key = key
        self.session_until = 0.0
        self.auth_sent = 0.0
        self.parser = parser
        self.st = state
        self.lock = lock
        self.stopping = threading.Event()
        self.ser = None
        self.outbox: deque = deque()

    def send(self, command: str):
        self.outbox.append(command.strip() + "\n")

    def run(self):
        import serial
        buf = b""
        while not self.stopping.is_set():
            if self.ser is None:
                try:
                    self.ser = serial.Serial(self.port, 115200, timeout=0.1, exclusive=False)
                    with self.lock:
                        if self.st.since:
                            self.st.reconnects += 1
                        self.st.connected = True
                        self.st.last_error = ""
                        self.st.since = time.monotonic()
                    buf = b""
                except (OSError, ValueError) as e:
                    with self.lock:
                        self.st.connected = False
                        self.st.last_error = str(e).split(":")[0][:60]
                    time.sleep(0.5)
                    continue
            try:
                now = time.monotonic()
                if self.key is not None and self.outbox and now >= self.session_until and now - self.auth_sent > 5:
                    self.ser.write(b"\nauth\n")
                    self.auth_sent = now
                while self.outbox and (self.key is None or now < self.session_until):
                    self.ser.write(self.outbox.popleft().encode())
                data = self.ser.read(4096)
            except (OSError, ValueError) as e:  # serial.SerialException is an OSError
                with self.lock:
                    self.st.connected = False
                    self.st.last_error = str(e)[:60]
                try:
                    self.ser.close()
                except Exception:  # noqa: the port is already gone
                    pass
                self.ser = None
                time.sleep(0.5)
                continue
            buf += data
            if len(buf) > 65536 and b"\n" not in buf:
                with self.lock:
                    self.parser.feed(buf[:200])  # reported as unparsable, then dropped
                buf = b""
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if self.key is not None:
                    self._handshake(line.strip())
                with self.lock:
                    self.parser.feed(line)
        if self.ser is not None:
            self.ser.close()

    def _handshake(self, line: bytes):
        from host_tools.auth import response
        if line.startswith(b"challenge "):
            try:
                c = bytes.fromhex(line.split()[1].decode())
            except (ValueError, IndexError):
                return
            self.ser.write(("auth " + response(self.key, c) + "\n").encode())
        elif line.startswith(b"session open for "):
            self.session_until = time.monotonic() + 240  # renewed well before the board's 300 s


def main(port: str, csv_path: str | None = None, send: list[str] | None = None, duration_s: float | None = None,
         screenshot: str | None = None, interactive: bool = True, key: bytes | None = None) -> int:
    from rich.live import Live

    st = MonitorState()
    lock = threading.Lock()
    parser = LineParser(st, Path(csv_path) if csv_path else None)
    reader = SerialReader(port, parser, st, lock, key)
    reader.start()
    for cmd in send or []:
        reader.send(cmd)
    if interactive and sys.stdin.isatty():
        def keyboard():
            for line in sys.stdin:
                if line.strip():
                    reader.send(line)
        threading.Thread(target=keyboard, daemon=True, name="keyboard").start()
    console = Console()
    t_end = time.monotonic() + duration_s if duration_s else None
    try:
        with Live(render(st, port), console=console, refresh_per_second=4, screen=False) as live:
            while t_end is None or time.monotonic() < t_end:
                time.sleep(0.25)
                with lock:
                    live.update(render(st, port))
    except KeyboardInterrupt:
        pass
    finally:
        reader.stopping.set()
        reader.join(timeout=2)
        parser.close()
    if screenshot:
        rec = Console(record=True, width=110, file=open("/dev/null", "w"))
        with lock:
            rec.print(render(st, port))
        Path(screenshot).write_text(rec.export_text())
    return 0
