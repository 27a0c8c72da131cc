# Runs under the MicroPython unix port: one cell trace (an electrochemical
# model's current, voltage, temperature and true SOC; host_tools/
# trace_check.py sends it on stdin, already scaled to the pack) through the
# unmodified firmware SOC stage, every cell of the series pack at the
# trace's voltage. Prints one JSON line: the SOC error against the trace's
# true SOC from the first synchronisation (full, empty or OCV) on, RMS and
# max, and every synchronisation (kind, time, SOC set, true SOC then).
# The firmware ticks every tick ms (the trace's samples are 5-10 s apart):
# the voltage interpolated linearly between samples, the current of the
# interval's end sample held (the solver's steps are constant-current).
# argv: firmware dir, chemistry, cells, capacity mAh, tick ms [, JSON of
# configuration keys to override]. stdin lines:
#   dt_ms,current_ma,cell_mv,temp_dc,true_cpct
import sys
import json

sys.path.insert(0, sys.argv[1])
from bms.config import Config  # noqa: E402
from bms.state import State, EV_SOC_SYNC, SYNC_FULL, SYNC_EMPTY, SYNC_OCV  # noqa: E402
from bms.soc import Soc  # noqa: E402
from bms import kernels  # noqa: E402
from bms import signals as S  # noqa: E402

chem = sys.argv[2]
cells = int(sys.argv[3])
cap = int(sys.argv[4])
tick = int(sys.argv[5])
user = {"cells": cells, "temps": 4, "capacity_mah": cap, "chemistry": chem}
if len(sys.argv) > 6:
    user.update(json.loads(sys.argv[6]))
cfg = Config(user)
st = State(cells, 4)
st.valid_scans = 1
st.fresh = 1
soc = Soc(cfg, kernels)
sig = st.sig
R = {"now": 0, "first": -1, "n": 0, "se": 0, "worst": 0}
syncs = []


def step(dt, cur, mv, tdc, true):
    for i in range(cells):
        st.cell_mv[i] = mv
    sig[S.CELL_MIN_MV] = mv
    sig[S.CELL_MAX_MV] = mv
    sig[S.CELL_SUM_MV] = mv * cells
    sig[S.PACK_MV] = mv * cells
    sig[S.CURRENT_MA] = cur
    sig[S.CHARGE_MA] = cur if cur > 0 else 0
    sig[S.DISCHARGE_MA] = -cur if cur < 0 else 0
    sig[S.TEMP_MIN_DC] = tdc
    sig[S.TEMP_MAX_DC] = tdc
    st.dt_ms = dt
    now = R["now"] + dt
    R["now"] = now
    head0 = st.ev_head
    soc.tick(st, now)
    # synchronisations this tick, from the event ring
    for j in range((st.ev_head - head0) % 64):
        e = ((head0 + j) % 64) * 4
        if st.events[e + 1] == EV_SOC_SYNC:
            kind = st.events[e + 2]
            syncs.append([kind, now // 1000, st.events[e + 3], true])
            if R["first"] < 0 and kind in (SYNC_FULL, SYNC_EMPTY, SYNC_OCV):
                R["first"] = now
    if R["first"] >= 0:
        d = st.soc_cpct - true
        d = d if d >= 0 else -d
        R["n"] += 1
        R["se"] += d * d
        if d > R["worst"]:
            R["worst"] = d


prev_mv = prev_true = None
for line in sys.stdin:
    f = line.split(",")
    if len(f) < 5:
        continue
    dt = int(f[0])
    cur = int(f[1])
    mv = int(f[2])
    tdc = int(f[3])
    true = int(f[4])
    if prev_mv is not None and dt > 0:
        left = dt
        while left > 0:
            s = tick if left > tick else left
            left -= s
            frac = dt - left
            step(s, cur, prev_mv + (mv - prev_mv) * frac // dt, tdc, prev_true + (true - prev_true) * frac // dt)
    prev_mv = mv
    prev_true = true
n = R["n"]
first = R["first"]
rms = (R["se"] / n) ** 0.5 / 100 if n else -1
print(json.dumps({"first_sync_s": first // 1000 if first >= 0 else -1, "ticks": n, "rms_pct": rms,
                  "max_pct": R["worst"] / 100, "syncs": syncs, "capacity_mah": st.capacity_mah}))
