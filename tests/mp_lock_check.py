# Runs under MicroPython: the production lock (bms/auth.py, bms/hmac256.py)
# on a console in production mode against a real App (model HAL) and a
# real ConfigStore and EventLog.
#   micropython mp_lock_check.py FIRMWARE DIR hmac
#       one JSON request per stdin line {"key": hex, "msg": hex} -> {"mac": hex}
#   micropython mp_lock_check.py FIRMWARE DIR serve
#       DIR holds key.bin; one JSON request per stdin line:
#       {"hex": line bytes} fed to the console (no line end added), or
#       {"advance_ms": n} time jumps on (one tick), or {"sabotage": 1};
#       the answer: the reply lines, whether the protected state changed,
#       the event-log auth records and the console's lock fields.
import sys
import json
import binascii
sys.path.insert(0, sys.argv[1])
from bms.hmac256 import hmac_sha256  # noqa: E402

DIR = sys.argv[2]
MODE = sys.argv[3]

if MODE == "hmac":
    for req in sys.stdin:
        r = json.loads(req)
        mac = hmac_sha256(binascii.unhexlify(r["key"]), binascii.unhexlify(r["msg"]))
        print(json.dumps({"mac": binascii.hexlify(mac).decode()}))
    sys.exit(0)

from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.console import Console  # noqa: E402
from bms.persist.config_store import ConfigStore  # noqa: E402
from bms.state import EV_AUTH  # noqa: E402
sys.path.insert(0, sys.argv[1].rstrip("/").rsplit("/", 1)[0] + "/host_tools/mp")
from resting_hal import RestingPackHal  # noqa: E402
import os  # noqa: E402


class Port:
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
store = ConfigStore(DIR, validate=Config)
store.save(raw)
app = App(Config(raw), RestingPackHal(8, 2, 3300, 7))
port = Port()
con = Console(app, port, raw, Config, store, None, 0)
con.root = DIR  # production mode
now = 0


def tick(n):
    global now
    for _ in range(n):
        app.tick(now)
        now += 100


def key_bytes():
    try:
        with open(DIR + "/key.bin", "rb") as f:
            return f.read()
    except OSError:
        return b""


def snapshot():
    st = app.state
    return (id(con.raw), id(app.cfg), os.stat(DIR + "/config.json"), bytes(st.fault_active), st.outputs,
            st.contactor_state, st.clear_req, bytes(st.balance_mask), st.ccl_ma, st.dcl_ma, st.grid_active,
            key_bytes(), con.maintenance)


def auth_events():
    st = app.state
    out = []
    for k in range(st.ev_count):
        i = ((st.ev_head - st.ev_count + k) % (len(st.events) // 4)) * 4
        if st.events[i + 1] == EV_AUTH:
            out.append([st.events[i + 2], st.events[i + 3]])
    return out


tick(30)  # contactors closed
for req in sys.stdin:
    r = json.loads(req)
    if "advance_ms" in r:
        now += r["advance_ms"]
        tick(1)
    before = snapshot()
    port.out = []
    interrupted = False
    if "advance_ms" in r:
        pass
    elif "sabotage" in r:
        app.state.clear_req ^= 1
    else:
        port.give(binascii.unhexlify(r["hex"]))
        try:
            while port.pos < len(port.inp):
                con.service(now)
        except KeyboardInterrupt:
            interrupted = True
    after = snapshot()
    text = "".join(port.out)
    print(json.dumps({"replies": text.split("\n")[:-1] if text else [], "changed": after != before,
                      "interrupted": interrupted, "session": con.session(now), "fails": con.auth_fails,
                      "events": auth_events(), "key": binascii.hexlify(key_bytes()).decode(),
                      "cfg_bsm": app.cfg.balance_start_mv}))
