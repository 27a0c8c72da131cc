"""`bmsctl gateway`: an OpenADR 2.0b VEN that bridges a utility's (or an
aggregator's) VTN to one pack, in real time.

CPython on a PC or a Pi beside the pack, never on the board. It registers
with the VTN through `openleadr` (its OpenADRClient: registration, polling,
XML schema validation of every incoming message, oadrCreatedEvent), turns
each event into the pack's console grid commands over the serial line
(production packs: the HMAC session of host_tools/auth.py), opts in or out
according to what the pack can serve, and reports what it delivered
(TELEMETRY_USAGE, power_real in W).

Signals served (names and types as in the OpenADR 2.0b profile
specification's signal list, as openleadr enumerates them in
openleadr.enums.SIGNAL_NAME / SIGNAL_TYPE; the spec itself was not re-read
for this module, so the mapping below is this gateway's choice):

- LOAD_DISPATCH, signalType "delta": each interval's payload is a change of
  the site's load in W; a negative delta (less load seen by the grid) is
  served as an export of |delta| W from the pack. A positive delta (more
  load) is refused: the pack does not charge on command. An itemBase with a
  unit other than W is refused; scale k/M is applied.
- SIMPLE (or simple), signalType "level": level 0 (normal) exports nothing,
  levels 1, 2, 3 (moderate, high, special) export the gateway's
  `simple_w` powers (settings).

Every other signal name or type, more than one signal per event, and every
out-of-range field is refused with an error naming the field, answered
optOut, and nothing reaches the pack. A message that is not well-formed XML
or fails the OpenADR 2.0b schema is dropped by openleadr before it is
parsed (and counted here): the pack never sees it.

Policy (what the pack can serve), decided when the event arrives and again
at each interval's start, from the pack's telemetry, `faults` and its grid
settings (`config get`):
- opt out: pack unreachable (no telemetry for `stale_s`, a command timing
  out), contactors not closed, an active fault of severity fault or
  critical, SOC unknown, SOC at or below the owner's reserve, a discharge
  limit of 0, an interval longer than the pack's grid_max_duration_s, or
  the pack able to give less than `min_share` of the power asked;
- opt in otherwise, with min(asked, grid_max_power_w, DCL x pack voltage):
  a partial delivery is reported as such (the report says what was
  delivered). The firmware checks again (its reserve floor with margins,
  the cells' voltage floor) and may refuse or end the event early: the
  gateway then sends optOut for the event with the firmware's reason.

Timing: the console's `grid start W MINUTES` takes whole minutes, so the
gateway sends the interval's remaining time rounded up (the firmware's
deadline is the backstop should the gateway die) and sends `grid cancel`
itself at the interval's exact end. A changed power at an interval
boundary is cancel + start. Cancellations and modifications (a new
modification number) replace the plan at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

log = logging.getLogger("bms.gateway")

SIGNALS = {("LOAD_DISPATCH", "delta"), ("SIMPLE", "level"), ("simple", "level")}
MAX_POWER_W = 100_000  # the firmware's bound for one grid event (P / V in 31 bits, grid.py)
SEVERITIES_OUT = ("fault", "critical")  # `faults` words that make the pack opt out
SCALES = {None: 1.0, "none": 1.0, "k": 1e3, "M": 1e6}
BACKSTOP_S = 5


class SettingsError(ValueError):
    pass


class EventError(ValueError):
    """An OpenADR event that the gateway refuses (the message names the field)."""


class PackError(RuntimeError):
    pass


# -- settings -----------------------------------------------------------------

@dataclass
class Settings:
    vtn: str
    ven_name: str
    port: str
    key_file: str | None = None
    ven_id: str | None = None
    report_s: int = 10  # report sampling (and reporting) interval
    min_share: float = 0.5  # below this share of the power asked: opt out
    simple_w: tuple = (1000, 2000, 3000)  # SIMPLE levels 1, 2, 3
    max_power_w: int = MAX_POWER_W  # an event asking more is malformed, whatever the pack
    max_event_s: int = 86400  # an event longer than this is refused
    max_notice_s: int = 7 * 86400  # an event starting later than this is refused
    stale_s: float = 5.0  # no telemetry for this long: the pack is unreachable
    vtn_fingerprint: str | None = None  # verify the VTN's XML signatures against it (openleadr)


_KEYS = {"vtn": str, "ven_name": str, "port": str, "key_file": str, "ven_id": str, "report_s": int,
         "min_share": float, "simple_w": list, "max_power_w": int, "max_event_s": int, "max_notice_s": int,
         "stale_s": float, "vtn_fingerprint": str}


def make_settings(values: dict, where: str = "settings") -> Settings:
    """Settings from a dict (the command line's or a file's [gateway]
    table), each value checked; SettingsError names the setting."""
    def bad(k, why):
        return SettingsError(f"{where}: {k}: {why}")

    out = {}
    for k, v in values.items():
        if v is None:
            continue
        if k not in _KEYS:
            raise bad(k, "unknown setting (known: " + ", ".join(sorted(_KEYS)) + ")")
        t = _KEYS[k]
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if isinstance(v, bool) or not isinstance(v, t):
            raise bad(k, f"expected {t.__name__}, got {v!r}")
        out[k] = v
    for k in ("vtn", "ven_name", "port"):
        if not out.get(k):
            raise bad(k, "required")
    from urllib.parse import urlparse
    u = urlparse(out["vtn"])
    if u.scheme not in ("http", "https") or not u.hostname:
        raise bad("vtn", f"{out['vtn']!r} is not an http(s) URL of a VTN (e.g. http://vtn.example:8080/OpenADR2/Simple/2.0b)")
    if not (1 <= len(out["ven_name"]) <= 64) or not out["ven_name"].isprintable():
        raise bad("ven_name", f"{out['ven_name']!r}: 1..64 printable characters")
    if "report_s" in out and not (1 <= out["report_s"] <= 3600 and (60 % out["report_s"] == 0 or (
            out["report_s"] % 60 == 0 and 3600 % out["report_s"] == 0))):
        # openleadr samples reports on a cron (utils.cron_config)
        raise bad("report_s", f"{out['report_s']}: a divisor of 60 s (1..60) or of 3600 s in whole minutes")
    if "min_share" in out and not (0.0 < out["min_share"] <= 1.0):
        raise bad("min_share", f"{out['min_share']} out of range (0, 1]")
    if "max_power_w" in out and not 1 <= out["max_power_w"] <= MAX_POWER_W:
        raise bad("max_power_w", f"{out['max_power_w']} out of range 1..{MAX_POWER_W} W")
    if "max_event_s" in out and not 60 <= out["max_event_s"] <= 7 * 86400:
        raise bad("max_event_s", f"{out['max_event_s']} out of range 60..604800 s")
    if "max_notice_s" in out and not 0 <= out["max_notice_s"] <= 366 * 86400:
        raise bad("max_notice_s", f"{out['max_notice_s']} out of range 0..31622400 s")
    if "stale_s" in out and not (1.0 <= out["stale_s"] <= 600.0):
        raise bad("stale_s", f"{out['stale_s']} out of range 1..600 s")
    if "simple_w" in out:
        w = out["simple_w"]
        if len(w) != 3 or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_POWER_W for x in w):
            raise bad("simple_w", f"{w!r}: three powers in W (levels 1, 2, 3), each 0..{MAX_POWER_W}")
        out["simple_w"] = tuple(w)
    if out.get("key_file") is not None:
        p = Path(out["key_file"])
        if not p.is_file():
            raise bad("key_file", f"{p}: no such file")
    return Settings(**out)


def load_settings(path, overrides: dict) -> Settings:
    """A TOML settings file ([gateway] table), then the command line's
    values over it."""
    from host_tools.tomlfile import read_toml
    where = str(path)
    raw = read_toml(where, SettingsError)
    extra = set(raw) - {"gateway"}
    if extra:
        raise SettingsError(f"{where}: unknown table(s) {', '.join(sorted(extra))} (only [gateway])")
    table = raw.get("gateway", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: gateway: expected a table")
    merged = dict(table)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return make_settings(merged, where if not overrides else where + " + command line")


# -- events -------------------------------------------------------------------

@dataclass
class Interval:
    start: datetime
    end: datetime
    watts: int  # export asked; 0: none in this interval


@dataclass
class Plan:
    event_id: str
    modification: int
    signal: str
    intervals: list
    status: str = ""

    @property
    def start(self) -> datetime:
        return self.intervals[0].start

    @property
    def end(self) -> datetime:
        return self.intervals[-1].end

    @property
    def peak_w(self) -> int:
        return max(i.watts for i in self.intervals)


def _get(d, key, where):
    if not isinstance(d, dict) or key not in d or d[key] is None:
        raise EventError(f"{where}.{key}: missing")
    return d[key]


def _when(v, where):
    if not isinstance(v, datetime) or v.tzinfo is None:
        raise EventError(f"{where}: {v!r} is not a date-time with a time zone")
    return v


def _span(v, where):
    if not isinstance(v, timedelta):
        raise EventError(f"{where}: {v!r} is not a duration")
    return v


def parse_event(ev: dict, s: Settings, now: datetime | None = None) -> Plan:
    """An event as openleadr parsed it -> the plan of exports; EventError
    naming the field when anything is missing, of the wrong kind or out of
    range. Nothing here talks to the pack."""
    now = now or datetime.now(timezone.utc)
    desc = _get(ev, "event_descriptor", "event")
    eid = _get(desc, "event_id", "event_descriptor")
    if not isinstance(eid, str) or not eid:
        raise EventError(f"event_descriptor.event_id: {eid!r} is not an id")
    mod = _get(desc, "modification_number", "event_descriptor")
    if not isinstance(mod, int) or isinstance(mod, bool) or mod < 0:
        raise EventError(f"event_descriptor.modification_number: {mod!r} is not a non-negative integer")
    ap = _get(ev, "active_period", "event")
    t0 = _when(_get(ap, "dtstart", "active_period"), "active_period.dtstart")
    dur = _span(_get(ap, "duration", "active_period"), "active_period.duration")
    if dur <= timedelta(0):
        raise EventError(f"active_period.duration: {dur} (open-ended or empty events are not served)")
    if dur.total_seconds() > s.max_event_s:
        raise EventError(f"active_period.duration: {dur} is longer than max_event_s ({s.max_event_s} s)")
    if (t0 - now).total_seconds() > s.max_notice_s:
        raise EventError(f"active_period.dtstart: {t0.isoformat()} is more than max_notice_s ({s.max_notice_s} s) ahead")
    if t0 + dur <= now:
        raise EventError(f"active_period: ended at {(t0 + dur).isoformat()}, before now")
    sigs = _get(ev, "event_signals", "event")
    if isinstance(sigs, dict):
        sigs = [sigs]
    if not isinstance(sigs, list) or not sigs:
        raise EventError("event_signals: no signal")
    if len(sigs) != 1:
        raise EventError(f"event_signals: {len(sigs)} signals; this gateway serves one signal per event")
    sig = sigs[0]
    w = "event_signals[0]"
    name = _get(sig, "signal_name", w)
    kind = _get(sig, "signal_type", w)
    if (name, kind) not in SIGNALS:
        raise EventError(f"{w}.signal_name/signal_type: {name!r}/{kind!r} not served "
                         "(LOAD_DISPATCH/delta in W, SIMPLE/level 0..3)")
    scale = 1.0
    base = sig.get("measurement")
    if base is not None and name == "LOAD_DISPATCH":
        unit = base.get("unit") if isinstance(base, dict) else None
        if unit != "W":
            raise EventError(f"{w}.measurement.unit: {unit!r}, LOAD_DISPATCH is served in W (powerReal)")
        sc = base.get("scale")
        if sc not in SCALES:
            raise EventError(f"{w}.measurement.scale: {sc!r} (none, k or M)")
        scale = SCALES[sc]
    ivs = _get(sig, "intervals", w)
    if not isinstance(ivs, list) or not ivs:
        raise EventError(f"{w}.intervals: no interval")
    out = []
    t = t0
    for j, iv in enumerate(ivs):
        wj = f"{w}.intervals[{j}]"
        d = _span(_get(iv, "duration", wj), wj + ".duration")
        if d <= timedelta(0):
            raise EventError(f"{wj}.duration: {d} (must be positive)")
        start = iv.get("dtstart")
        start = t if start is None else _when(start, wj + ".dtstart")
        if abs((start - t).total_seconds()) > 1:
            raise EventError(f"{wj}.dtstart: {start.isoformat()}, intervals must follow each other from "
                             f"active_period.dtstart (expected {t.isoformat()})")
        v = _get(iv, "signal_payload", wj)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise EventError(f"{wj}.signal_payload: {v!r} is not a number")
        if name == "LOAD_DISPATCH":
            p = v * scale
            if p > 0:
                raise EventError(f"{wj}.signal_payload: +{p:g} W asks for more load; the pack only exports "
                                 "(a negative LOAD_DISPATCH delta)")
            watts = int(round(-p))
            if watts > s.max_power_w:
                raise EventError(f"{wj}.signal_payload: {p:g} W out of range -{s.max_power_w}..0 W (max_power_w)")
        else:
            if v != int(v) or not 0 <= v <= 3:
                raise EventError(f"{wj}.signal_payload: {v!r}, a SIMPLE level is 0, 1, 2 or 3")
            watts = 0 if v == 0 else s.simple_w[int(v) - 1]
        out.append(Interval(start, start + d, watts))
        t = start + d
    if abs((t - (t0 + dur)).total_seconds()) > 1:
        raise EventError(f"{w}.intervals: they end at {t.isoformat()}, active_period at {(t0 + dur).isoformat()}")
    if all(i.watts == 0 for i in out):
        raise EventError(f"{w}.intervals: no interval asks for an export")
    return Plan(eid, mod, name, out, desc.get("event_status", ""))


# -- the pack ----------------------------------------------------------------

@dataclass
class PackView:
    """What the decision needs, read from the pack just before it."""
    telemetry: dict
    age_s: float
    reserve_cpct: int
    max_power_w: int
    max_duration_s: int
    faults: list  # (name, severity)


def decide(plan: Plan, pack: PackView | None, why_unreachable: str, s: Settings, now: datetime | None = None):
    """('optIn', watts) or ('optOut', reason) for the plan's remaining
    intervals, from what the pack reports. Pure: no I/O."""
    now = now or datetime.now(timezone.utc)
    if pack is None:
        return "optOut", "pack unreachable: " + why_unreachable
    tl = pack.telemetry
    if pack.age_s > s.stale_s:
        return "optOut", f"pack unreachable: no telemetry for {pack.age_s:.0f} s"
    if tl.get("contactor") != "closed":
        return "optOut", f"contactors {tl.get('contactor')}, not closed"
    bad = [f"{n} ({sev})" for n, sev in pack.faults if sev in SEVERITIES_OUT]
    if bad:
        return "optOut", "active faults: " + ", ".join(bad)
    soc = tl.get("soc_cpct", -1)
    if not isinstance(soc, int) or soc < 0:
        return "optOut", "SOC not known yet"
    if soc <= pack.reserve_cpct:
        return "optOut", (f"SOC {soc / 100:.2f} % at or below the owner's reserve {pack.reserve_cpct / 100:.2f} %")
    dcl, mv = tl.get("dcl_ma", 0), tl.get("pack_mv", 0)
    if dcl <= 0:
        return "optOut", "discharge limit 0 A (discharge blocked)"
    left = [i for i in plan.intervals if i.end > now]
    longest = max(((i.end - max(i.start, now)).total_seconds() for i in left if i.watts > 0), default=0)
    if longest > pack.max_duration_s:
        return "optOut", f"an interval of {longest:.0f} s is longer than the pack's grid_max_duration_s {pack.max_duration_s} s"
    asked = max((i.watts for i in left), default=0)
    can = min(pack.max_power_w, int(dcl * mv // 1_000_000))
    if can < s.min_share * asked:
        return "optOut", (f"the pack can give {can} W (grid_max_power_w {pack.max_power_w} W, discharge limit "
                          f"{dcl / 1000:.1f} A at {mv / 1000:.1f} V) of the {asked} W asked, below min_share {s.min_share:g}")
    return "optIn", min(asked, can)


class PackConsole:
    """The pack's serial console: a reader thread keeps the newest
    telemetry and hands reply lines to the one command waiting for them.
    key: a production pack's key (host_tools/auth.py); commands that change
    anything run in a session, reopened before it expires."""

    SESSION_S = 240  # the firmware's session lasts 5 minutes

    def __init__(self, port: str, key: bytes | None = None, baud: int = 115200):
        self.port_name = port
        self.key = key
        self.baud = baud
        self.telemetry: dict | None = None
        self.tl_at = 0.0
        self.boots = 0
        self.sent: list[str] = []  # every command line written, in order (what reached the pack)
        self.mode = None  # "bench" or "production" once probed
        self._lines: queue.Queue = queue.Queue()
        self._cmd = threading.Lock()
        self._stop = threading.Event()
        self._session_at = None
        self._ser = None
        self._thread = None
        self.on_telemetry = None  # callable(dict), from the reader thread

    def open(self, timeout_s: float = 10.0):
        import serial
        try:
            self._ser = serial.Serial(self.port_name, self.baud, timeout=0.1)
        except (serial.SerialException, OSError) as e:
            raise PackError(f"port {self.port_name}: {e}") from None
        self._thread = threading.Thread(target=self._read, daemon=True, name="pack-console")
        self._thread.start()
        for attempt in (0, 1):
            t_end = time.monotonic() + timeout_s / 2
            while self.telemetry is None and time.monotonic() < t_end:
                time.sleep(0.05)
            if self.telemetry is None and attempt == 0:
                try:
                    self.command("telemetry 1000", timeout_s / 4)  # switched off on this board: the gateway needs it
                except PackError:
                    pass
        if self.telemetry is None:
            raise PackError(f"no telemetry from {self.port_name} within {timeout_s:.0f} s (is the firmware running?)")
        self._probe_mode()
        return self

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._ser is not None:
            self._ser.close()

    def _read(self):
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self._ser.read(4096)
            except Exception as e:  # noqa: a port gone (board unplugged): the decision sees stale telemetry
                log.warning("pack port read failed: %s", e)
                time.sleep(0.5)
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                if line.startswith('{"tl"'):
                    try:
                        tl = json.loads(line)
                    except ValueError:
                        continue
                    self.telemetry, self.tl_at = tl, time.monotonic()
                    if self.on_telemetry is not None:
                        self.on_telemetry(tl)
                elif line.startswith('{"boot"'):
                    self.boots += 1
                    self._session_at = None
                else:
                    self._lines.put(line)
            if len(buf) > 65536:
                buf = b""

    def command(self, line: str, timeout_s: float = 10.0) -> list[str]:
        """One console command; its reply lines, or PackError with the
        firmware's reason (ERR) or a timeout."""
        word = line.split()[0].lower()
        with self._cmd:
            while not self._lines.empty():
                self._lines.get_nowait()
            self.sent.append(line)
            try:
                self._ser.write(b"\n" + line.encode() + b"\n")
            except Exception as e:  # noqa
                raise PackError(f"port {self.port_name}: {e}") from None
            out = []
            t_end = time.monotonic() + timeout_s
            while True:
                left = t_end - time.monotonic()
                if left <= 0:
                    raise PackError(f"no reply to {line!r} within {timeout_s:.0f} s")
                try:
                    ln = self._lines.get(timeout=left)
                except queue.Empty:
                    continue
                if ln == "OK " + word:
                    return out
                if ln.startswith("ERR " + word + ":"):
                    raise PackError(ln[len("ERR " + word + ":"):].strip())
                if ln.startswith("ERR ") or ln.startswith("OK "):
                    continue  # a reply to something else on the line
                out.append(ln)

    def _probe_mode(self):
        # `auth` is open in both modes: bench mode answers that nothing is
        # locked; production mode gives a challenge (unanswered, it expires).
        try:
            self.command("auth")
        except PackError as e:
            if "bench mode" in str(e):
                self.mode = "bench"
                return
            raise PackError(f"auth: {e}") from None
        self.mode = "production"
        if self.key is None:
            raise PackError("the pack is in production mode: give its key (--key-file, BMS_KEY_FILE or BMS_KEY)")
        self._session()

    def _session(self):
        from host_tools.auth import response
        lines = self.command("auth")
        ch = [ln for ln in lines if ln.startswith("challenge ")]
        if not ch:
            raise PackError(f"auth: no challenge in {lines}")
        try:
            self.command("auth " + response(self.key, bytes.fromhex(ch[-1].split()[1])))
        except PackError as e:
            raise PackError(f"auth: the pack refused the key: {e}") from None
        self._session_at = time.monotonic()

    def change(self, line: str) -> list[str]:
        """A command that changes something: in a session on a production pack."""
        if self.mode == "production" and (self._session_at is None or time.monotonic() - self._session_at > self.SESSION_S):
            self._session()
        try:
            return self.command(line)
        except PackError as e:
            if self.mode == "production" and str(e).startswith("locked"):
                self._session()  # the board restarted or the session ended early
                return self.command(line)
            raise

    def config_int(self, key: str) -> int:
        lines = self.command("config get " + key)
        for ln in lines:
            k, _, v = ln.partition(" = ")
            if k.strip() == key:
                try:
                    return int(v)
                except ValueError:
                    break
        raise PackError(f"config get {key}: unexpected reply {lines}")

    def view(self) -> PackView:
        if self.telemetry is None:
            raise PackError("no telemetry yet")
        faults = []
        for ln in self.command("faults"):
            w = ln.split()
            if len(w) >= 2:
                faults.append((w[0], w[1]))
        return PackView(dict(self.telemetry), time.monotonic() - self.tl_at, self.config_int("grid_reserve_cpct"),
                        self.config_int("grid_max_power_w"), self.config_int("grid_max_duration_s"), faults)


# -- the gateway ---------------------------------------------------------------

@dataclass
class Meter:
    """The energy the pack exported, from the firmware's per-event count in
    telemetry (grid_mwh: zeroed when an event starts), summed over events,
    and the firmware's clock of the line it came in (t, ms, wraps at
    2**30): power is energy over the firmware's time between two lines, so
    a line that reaches the host late (a loaded host, a slow serial link)
    moves a report's window, never shortens it."""
    mwh: int = 0
    last: int | None = None
    t_ms: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, tl: dict):
        v = tl.get("grid_mwh")
        t = tl.get("t")
        if not isinstance(v, int) or not isinstance(t, int):
            return
        with self.lock:
            if self.last is not None:
                self.mwh += v - self.last if v >= self.last else v  # a new event starts from 0
            self.last = v
            self.t_ms = t


class Gateway:
    def __init__(self, s: Settings, pack: PackConsole, out=None):
        from openleadr import OpenADRClient, enums
        self.s = s
        self.pack = pack
        self.out = out if out is not None else sys.stdout
        self.meter = Meter()
        pack.on_telemetry = self.meter.feed
        self.timeline: list[tuple[float, str, str]] = []  # (unix time, what, details)
        self.decisions: dict[str, tuple[str, str]] = {}  # event id -> (opt, reason or watts)
        self.rejected_messages: list[str] = []
        self.plans: dict[str, Plan] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.active: str | None = None  # the event whose grid command runs on the pack
        self.reports: list[tuple[str, float]] = []
        self._last_report = (None, 0)  # (firmware ms, mWh) at the last report
        self._started = 0.0
        self.client = OpenADRClient(ven_name=s.ven_name, vtn_url=s.vtn, ven_id=s.ven_id,
                                    vtn_fingerprint=s.vtn_fingerprint, show_fingerprint=False)
        self.client.add_handler("on_event", self.on_event)
        self.client.add_handler("on_update_event", self.on_update_event)
        # One TELEMETRY_USAGE report, two power_real values in W: the grid
        # export the firmware counted, and the pack's discharge power now.
        for rid, cb in (("delivered_w", self._delivered_w), ("pack_w", self._pack_w)):
            self.client.add_report(cb, resource_id="pack", measurement="power_real", unit="W",
                                   report_name=enums.REPORT_NAME.TELEMETRY_USAGE, report_specifier_id="bms-pack",
                                   r_id=rid, sampling_rate=timedelta(seconds=s.report_s),
                                   report_duration=timedelta(seconds=s.report_s))
        self.client.add_hook("before_schema_validation", self._check_xml)

    def note(self, what: str, details: str = ""):
        self.timeline.append((time.time(), what, details))
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        print(f"{stamp} {what:<14} {details}", file=self.out, flush=True)

    # -- incoming messages ------------------------------------------------
    def _check_xml(self, content: str):
        # The same check openleadr makes next (messaging.validate_xml_schema):
        # here only to say what was dropped; openleadr drops it either way.
        from lxml import etree
        from openleadr.messaging import XML_SCHEMA
        try:
            tree = etree.fromstring(content.encode() if isinstance(content, str) else content)
        except etree.XMLSyntaxError as e:
            why = f"not well-formed XML: {e}"
        else:
            if XML_SCHEMA.validate(tree):
                return
            err = XML_SCHEMA.error_log.last_error
            why = f"fails the OpenADR 2.0b schema: line {err.line}: {err.message}" if err else "fails the OpenADR 2.0b schema"
        self.rejected_messages.append(why)
        self.note("rejected", "message from the VTN dropped, the pack not told: " + why[:300])

    async def on_event(self, ev: dict) -> str:
        return await self._consider(ev, new=True)

    async def on_update_event(self, ev: dict) -> str:
        return await self._consider(ev, new=False)

    async def _consider(self, ev: dict, new: bool) -> str:
        eid = (ev.get("event_descriptor") or {}).get("event_id", "?")
        status = (ev.get("event_descriptor") or {}).get("event_status")
        if not new:
            await self._drop(eid, "modified" if status != "cancelled" else "cancelled")
        if status == "cancelled":
            self.note("cancelled", f"event {eid} cancelled by the VTN")
            prev = self.decisions.get(eid, ("optOut", ""))[0]
            return prev
        self.note("dispatched" if new else "modified", f"event {eid}: " + _describe(ev))
        try:
            plan = parse_event(ev, self.s)
        except EventError as e:
            return self._opt(eid, "optOut", f"refused: {e}")
        view, why = await self._view()
        opt, what = decide(plan, view, why, self.s)
        if opt == "optOut":
            return self._opt(eid, "optOut", what)
        self.plans[eid] = plan
        self.tasks[eid] = asyncio.get_running_loop().create_task(self._run(plan))
        return self._opt(eid, "optIn", f"{what} W" + ("" if what >= plan.peak_w else f" of the {plan.peak_w} W asked"))

    def _opt(self, eid, opt, detail):
        self.decisions[eid] = (opt, detail)
        self.note("opt-in" if opt == "optIn" else "opt-out", f"event {eid}: {detail}")
        return opt

    async def _view(self):
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.pack.view), ""
        except PackError as e:
            return None, str(e)

    async def _drop(self, eid, why):
        t = self.tasks.pop(eid, None)
        if t is not None:
            t.cancel()
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self.plans.pop(eid, None)
        if self.active == eid:
            await self._cancel_on_pack(eid, why)

    async def _pack(self, line):
        return await asyncio.get_running_loop().run_in_executor(None, self.pack.change, line)

    async def _cancel_on_pack(self, eid, why):
        self.active = None
        try:
            await self._pack("grid cancel")
            self.note("grid cancel", f"event {eid} {why}")
        except PackError as e:
            self.note("grid cancel", f"event {eid} {why}: the pack says {e}")

    async def _late_opt_out(self, plan: Plan, reason: str):
        self._opt(plan.event_id, "optOut", reason)
        try:
            from openleadr import utils
            await self.client.created_event(request_id=utils.generate_id(), event_id=plan.event_id, opt_type="optOut",
                                            modification_number=plan.modification)
        except Exception as e:  # noqa: the VTN not answering must not stop the gateway
            log.warning("optOut for %s not delivered: %s", plan.event_id, e)

    async def _sleep_until(self, when: datetime, eid: str):
        """Sleeps until `when`; returns early (False) if the pack ended our
        event itself (its reserve, voltage floor, a fault)."""
        while True:
            left = (when - datetime.now(timezone.utc)).total_seconds()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, 0.5))
            tl = self.pack.telemetry or {}
            if self.active == eid and tl.get("grid") == 0 and time.monotonic() - self._started > 3:
                return False

    async def _run(self, plan: Plan):
        eid = plan.event_id
        running_w = 0
        for iv in plan.intervals:
            if not await self._sleep_until(iv.start, eid):
                break
            now = datetime.now(timezone.utc)
            if iv.end <= now:
                continue
            if iv.watts == 0:
                if running_w:
                    await self._cancel_on_pack(eid, "interval without export")
                    running_w = 0
                continue
            view, why = await self._view()
            sub = Plan(eid, plan.modification, plan.signal, [Interval(now, iv.end, iv.watts)])
            opt, what = decide(sub, view, why, self.s)
            if opt == "optOut":
                if running_w:
                    await self._cancel_on_pack(eid, "the pack cannot go on")
                await self._late_opt_out(plan, "at the start of an interval: " + what)
                return
            if running_w and running_w != what:
                await self._cancel_on_pack(eid, "power changes")
                running_w = 0
            if not running_w:
                # whole minutes, BACKSTOP_S past the interval's end (the gateway
                # cancels at the end; the firmware's deadline only if it cannot)
                minutes = max(1, math.ceil(((iv.end - now).total_seconds() + BACKSTOP_S) / 60))
                minutes = min(minutes, max(1, view.max_duration_s // 60))
                try:
                    await self._pack(f"grid start {what} {minutes}")
                except PackError as e:
                    await self._late_opt_out(plan, "the pack refused: " + str(e))
                    return
                self.active, self._started, running_w = eid, time.monotonic(), what
                self.note("grid start", f"event {eid}: {what} W until {iv.end.strftime('%H:%M:%S')} "
                                        f"(grid start {what} {minutes})")
        else:
            if await self._sleep_until(plan.end, eid) and self.active == eid:
                await self._cancel_on_pack(eid, "ended at its end time")
                self._ended(plan, "at its end time")
                return
        if self.active == eid:
            self.active = None
            why = await self._why_ended()
            self._ended(plan, "early by the pack: " + why)
            await self._late_opt_out(plan, "the pack ended the event early: " + why)

    async def _why_ended(self):
        try:
            lines = await asyncio.get_running_loop().run_in_executor(None, self.pack.command, "grid status")
            return lines[0] if lines else "?"
        except PackError as e:
            return str(e)

    def _ended(self, plan, how):
        tl = self.pack.telemetry or {}
        self.tasks.pop(plan.event_id, None)
        self.note("ended", f"event {plan.event_id} {how}; the pack counted {tl.get('grid_mwh', 0) / 1000:.2f} Wh exported")

    # -- reports ----------------------------------------------------------
    def _delivered_w(self):
        with self.meter.lock:
            mwh, t_ms = self.meter.mwh, self.meter.t_ms
        t0, m0 = self._last_report
        self._last_report = (t_ms, mwh)
        dt_ms = (t_ms - t0) % (1 << 30) if t_ms is not None and t0 is not None else 0
        w = round((mwh - m0) * 3600 / dt_ms, 1) if dt_ms else 0.0  # mWh x 3.6 J / (ms / 1000)
        self.reports.append(("delivered_w", w))
        if w:
            self.note("report", f"delivered {w:.0f} W (mean over {dt_ms / 1000:.1f} s of the firmware's clock, "
                                f"its export count)")
        return w

    def _pack_w(self):
        tl = self.pack.telemetry or {}
        w = round(-tl.get("i_ma", 0) * tl.get("pack_mv", 0) / 1e6, 1)
        self.reports.append(("pack_w", w))
        return w

    # -- running ----------------------------------------------------------
    async def start(self):
        self.note("registering", f"VEN {self.s.ven_name!r} with the VTN at {self.s.vtn}")
        await self.client.run()
        if not self.client.registration_id:
            raise PackError(f"the VTN at {self.s.vtn} did not register VEN {self.s.ven_name!r}")
        self.note("registered", f"venID {self.client.ven_id}, registration {self.client.registration_id}; "
                                f"pack on {self.pack.port_name} ({self.pack.mode} mode)")

    async def stop(self):
        for eid in list(self.tasks):
            await self._drop(eid, "the gateway stops")
        await self.client.stop()


def _describe(ev: dict) -> str:
    try:
        ap = ev["active_period"]
        sig = ev["event_signals"][0] if isinstance(ev["event_signals"], list) else ev["event_signals"]
        pays = [iv.get("signal_payload") for iv in sig.get("intervals", [])]
        return (f"{sig.get('signal_name')}/{sig.get('signal_type')} {pays} from "
                f"{ap['dtstart'].strftime('%H:%M:%S')} for {ap['duration'].total_seconds():.0f} s")
    except Exception:  # noqa: only a description of something that will be refused
        return "(unreadable)"


def main(s: Settings) -> int:
    from host_tools.auth import KeyError_, load_key
    try:
        key = load_key(s.key_file)
    except KeyError_ as e:
        print(f"error: key_file: {e}", file=sys.stderr)
        return 2
    pack = PackConsole(s.port, key)
    try:
        pack.open()
    except PackError as e:
        print(f"error: port: {e}", file=sys.stderr)
        return 3

    async def run():
        gw = Gateway(s, pack)
        await gw.start()
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            await gw.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except PackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    finally:
        pack.close()
    return 0
