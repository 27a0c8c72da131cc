# Runs under MicroPython: the configuration store, the state record and the
# event log on littlefs (on the NOR-flash model), with the firmware's own
# configuration validation. Prints one JSON line.
import sys
import json
import os
import vfs

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from flashsim import Flash  # noqa: E402
from bms.config import Config  # noqa: E402
from bms.persist.config_store import ConfigStore  # noqa: E402
from bms.persist.state_record import StateStore, StateRecord  # noqa: E402
from bms.persist.event_log import EventLog  # noqa: E402
from bms.state import State  # noqa: E402

out = {}
flash = Flash()
vfs.VfsLfs2.mkfs(flash)
vfs.mount(vfs.VfsLfs2(flash), "/f")
store = ConfigStore("/f", validate=Config)
good = {"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP", "balance_start_mv": 20}
store.save(good)
raw, src = store.load()
out["roundtrip"] = raw["balance_start_mv"] == 20 and src == "/f/config.json" and raw["version"] == 2
# an invalid configuration never reaches the flash; the stored one stays
try:
    store.save(dict(good, balance_stop_mv=50))
    out["invalid_rejected"] = False
except ValueError as e:
    out["invalid_rejected"] = "balance_stop_mv" in str(e)
out["after_invalid"] = store.load()[0]["balance_start_mv"] == 20
# a second save keeps the first as the last good copy
store.save(dict(good, balance_start_mv=25))
# corrupt the current file: the last good copy is used, with a warning
with open("/f/config.json", "r+b") as f:
    f.seek(20)
    f.write(b"#")
raw, src = store.load()
out["fallback"] = src == "/f/config.json.bak" and raw["balance_start_mv"] == 20
out["fallback_warned"] = any("CRC" in w for w in store.warnings) and any("last good" in w for w in store.warnings)
# both copies bad: an error, never silent defaults
with open("/f/config.json.bak", "w") as f:
    f.write("{}\n00000000\n")
try:
    store.load()
    out["no_defaults"] = False
except OSError as e:
    out["no_defaults"] = "no valid configuration" in str(e)
# schema migration from version 1
with open("/f/config.json", "w") as f:
    from bms.persist.config_store import _encode
    f.write(_encode({"version": 1, "cells": 16, "temps": 4, "capacity_mah": 100000, "balance_delta_mv": 30}))
raw, src = store.load()
out["migrated"] = raw.get("balance_start_mv") == 30 and "balance_delta_mv" not in raw and raw["version"] == 2
Config(raw)

# state record: ping-pong slots, newest valid wins, a torn slot costs one save
ss = StateStore("/f")
r = StateRecord()
for i in range(5):
    r.soc_cpct = 1000 + i
    ss.save(r)
got = ss.load()
out["state_newest"] = got.seq == 5 and got.soc_cpct == 1004
with open(ss.slots[1], "r+b") as f:  # seq 5 sits in slot 1 (odd)
    f.seek(9)
    f.write(b"\x99")
got = ss.load()
out["state_torn"] = got.seq == 4 and got.soc_cpct == 1003

# event log drained from the tick's RAM ring, outside the tick
st = State(4, 2)
for i in range(20):
    st.event(i * 100, 1, i, i * 10)
log = EventLog("/f")
n = 0
while True:
    k = log.drain(st)
    if not k:
        break
    n += k
recs = log.records()
out["drained"] = n == 20 and [x[3] for x in recs] == list(range(20)) and [x[0] for x in recs] == list(range(20))

# between ticks, a routine keeper call (nothing new to log, no save due)
# allocates nothing: no garbage for the loop to collect, ever (the drain's
# and the rate limit's imports once allocated on every call)
import micropython  # noqa: E402
from bms.persist.keeper import Keeper  # noqa: E402


class _App:
    state = st


kp = Keeper(StateStore("/f"), log)
kp.rec = StateRecord()
kp.after_tick(_App, 0)  # the first call saves
ok = False
micropython.heap_lock()
try:
    for t in range(1, 50):
        kp.after_tick(_App, t * 1000)
    ok = True
except MemoryError:
    pass
finally:
    micropython.heap_unlock()
out["keeper_routine_no_alloc"] = ok
print(json.dumps(out))
