# Runs under MicroPython: the console against a real App (with a model HAL)
# and a real ConfigStore, fed hostile input.
#   micropython mp_console_check.py FIRMWARE STORE_DIR batch LINES_FILE
#       feeds every line of the file; prints one JSON summary
#   micropython mp_console_check.py FIRMWARE STORE_DIR serve
#       one JSON request per stdin line {"hex": ...}, one JSON answer each
#   micropython mp_console_check.py FIRMWARE STORE_DIR budget
#       how many bytes one service() call takes from a flooded port
# A line answered only with ERR (or with nothing) must leave everything as
# it was: configuration, stored file, faults, outputs, console settings.
import sys
import json
sys.path.insert(0, sys.argv[1])
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.console import Console  # noqa: E402
from bms.persist.config_store import ConfigStore  # noqa: E402
from bms.persist.event_log import EventLog  # noqa: E402
sys.path.insert(0, sys.argv[1].rstrip("/").rsplit("/", 1)[0] + "/host_tools/mp")
from resting_hal import RestingPackHal  # noqa: E402

STORE = sys.argv[2]
MODE = sys.argv[3]




class Port:
    """Input from a buffer; output collected as lines."""

    def __init__(self):
        self.inp = b""
        self.pos = 0
        self.out = []

    def give(self, data):
        self.inp = data
        self.pos = 0

    def read_into(self, buf, n):
        k = len(self.inp) - self.pos
        if k > n:
            k = n
        for i in range(k):
            buf[i] = self.inp[self.pos + i]
        self.pos += k
        return k

    def write(self, text):
        self.out.append(text)


raw = {"cells": 8, "temps": 2, "capacity_mah": 100000, "chemistry": "LFP", "telemetry_ms": 0}
store = ConfigStore(STORE, validate=Config)
store.save(raw)
hal = RestingPackHal(8, 2, 3300, 7)
app = App(Config(raw), hal)
port = Port()
con = Console(app, port, raw, Config, store, EventLog(STORE), 0)
now = 0


def tick(n):
    global now
    for _ in range(n):
        app.tick(now)
        now += 100


def stored():
    import os
    return os.stat(STORE + "/config.json")


def snapshot():
    # Identity of the config objects (the console can only change them by
    # replacing them), the stored file's stat, and the state a command
    # could touch.
    st = app.state
    return (id(con.raw), id(app.cfg), stored(), bytes(st.fault_active), st.outputs, st.contactor_state,
            st.clear_req, bytes(st.balance_mask), st.ccl_ma, st.dcl_ma, con.telemetry_ms)


READ_ONLY = ("help", "version", "status", "cells", "faults", "log")


def mutating(line_text, oks):
    # Which OK'd commands may change state: clear, config set, telemetry, grid start/cancel.
    for w in oks:
        if w in READ_ONLY:
            continue
        if w == "config" and "set" not in line_text:
            continue
        if w == "grid" and "start" not in line_text and "cancel" not in line_text:
            continue
        return True
    return False


def feed(data, sabotage=False):
    """Feeds one input line; returns (replies, changed_unexpectedly).
    sabotage: change the state behind the console's back (the check's own
    test: it must notice)."""
    before = snapshot()
    if sabotage:
        app.state.clear_req ^= 1
    port.out = []
    port.give(data + b"\n")
    while port.pos < len(port.inp):
        con.service(now)
    text = "".join(port.out)
    lines = text.split("\n")[:-1] if text else []
    oks = [ln[3:] for ln in lines if ln.startswith("OK ")]
    after = snapshot()
    try:
        text = data.decode()
    except UnicodeError:
        text = ""
    bad = after != before and not mutating(text, oks)
    return lines, bad


tick(30)  # contactors closed, a realistic state

if MODE == "batch":
    n = errs = oks = changed = internal = 0
    worst = None
    f = open(sys.argv[4], "rb")
    while True:
        line = f.readline()
        if not line:
            break
        if line[-1:] == b"\n":
            line = line[:-1]
        replies, bad = feed(line)
        n += 1
        for r in replies:
            if r.startswith("ERR "):
                errs += 1
                if "internal error" in r:
                    internal += 1
                    worst = r
            elif r.startswith("OK "):
                oks += 1
        if bad:
            changed += 1
            if worst is None:
                worst = "state changed by " + repr(line[:80])
        if n % 1000 == 0:
            tick(1)  # time goes on between bursts; the tick still runs
    print(json.dumps({"lines": n, "err": errs, "ok": oks, "changed": changed, "internal": internal,
                      "example": worst, "app_errors": app.errors, "internal_error": app.state.internal_error}))
elif MODE == "serve":
    for req in sys.stdin:
        r = json.loads(req)
        data = bytes.fromhex(r["hex"])
        replies, bad = feed(data, r.get("sabotage", False))
        print(json.dumps({"replies": replies, "changed": bad}))
elif MODE == "budget":
    port.give(b"x" * 100000)
    con.service(now)
    first = port.pos
    tick(1)
    print(json.dumps({"taken": first, "ticks_ok": app.state.internal_error == 0}))
elif MODE == "oom":
    # `config set` on a heap too small for it: building the second
    # configuration, or rebuilding the stages from it, raises MemoryError
    def _no_memory(*a):
        raise MemoryError("memory allocation failed")
    out = {}
    real_build = con.build_cfg
    cfg0, st0 = app.cfg, stored()
    con.build_cfg = _no_memory
    out["build"], out["build_changed"] = feed(b"config set balance_start_mv 25")
    out["build_kept"] = app.cfg is cfg0 and stored() == st0
    con.build_cfg = real_build
    app.reconfigure = _no_memory
    out["apply"], out["apply_changed"] = feed(b"config set balance_start_mv 25")
    out["apply_kept_running"] = app.cfg is cfg0 and app.cfg.balance_start_mv != 25
    out["apply_saved"] = ConfigStore(STORE, validate=Config).load()[0].get("balance_start_mv") == 25
    print(json.dumps(out))

