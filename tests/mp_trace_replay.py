# Runs under the MicroPython unix port: one cell trace (an electrochemical
# model's current, voltage, temperature and true SOC; host_tools/
# trace_check.py sends it on stdin, already scaled to the pack) through the
# unmodified firmware SOC stage, every cell of the series pack at the
# trace's voltage. Prints one JSON line: the SOC error against the trace's
# true SOC from the first synchronisation (full, empty or OCV) on, RMS and
# max, and every synchronisation (kind, time, SOC set, true SOC then).
# argv: firmware dir, chemistry, cells, capacity mAh. stdin lines:
#   dt_ms,current_ma,cell_mv,temp_dc,true_cpct
import sys
import json

sys.path.insert(0, sys.argv[1])
from bms.config import Config  # noqa: E402
from bms.state import State, SYNC_FULL, SYNC_EMPTY, SYNC_OCV  # noqa: E402
from bms.soc import Soc  # noqa: E402
from bms import signals as S  # noqa: E402

chem = sys.argv[2]
cells = int(sys.argv[3])
cap = int(sys.argv[4])
cfg = Config({"cells": cells, "temps": 4, "capacity_mah": cap, "chemistry": chem})
st = State(cells, 4)
st.valid_scans = 1
st.fresh = 1
soc = Soc(cfg)
sig = st.sig
now = 0
first = -1
n = 0
se = 0
worst = 0
syncs = []
for line in sys.stdin:
    f = line.split(",")
    if len(f) < 5:
        continue
    dt = int(f[0])
    cur = int(f[1])
    mv = int(f[2])
    tdc = int(f[3])
    true = int(f[4])
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
    now += dt
    head0 = st.ev_head
    soc.tick(st, now)
    # synchronisations this tick, from the event ring
    k = (st.ev_head - head0) % 64 if st.ev_head != head0 else 0
    for j in range(k):
        e = ((head0 + j) % 64) * 4
        if st.events[e + 1] == 7:  # EV_SOC_SYNC
            kind = st.events[e + 2]
            syncs.append([kind, now // 1000, st.events[e + 3], true])
            if first < 0 and kind in (SYNC_FULL, SYNC_EMPTY, SYNC_OCV):
                first = now
    if first >= 0:
        d = st.soc_cpct - true
        d = d if d >= 0 else -d
        n += 1
        se += d * d
        if d > worst:
            worst = d
rms = (se / n) ** 0.5 / 100 if n else -1
print(json.dumps({"first_sync_s": first // 1000 if first >= 0 else -1, "ticks": n, "rms_pct": rms,
                  "max_pct": worst / 100, "syncs": syncs, "capacity_mah": st.capacity_mah}))
