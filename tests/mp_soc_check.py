# Runs under the MicroPython unix port: the SOC and grid stages driven
# directly through a State with chosen signals. Prints one JSON object per
# check (name -> values); tests/test_soc.py asserts on them.
import sys
import json
import micropython

sys.path.insert(0, sys.argv[1])
from bms.config import Config  # noqa: E402
from bms.state import State, EV_SOC_SYNC, EV_CAPACITY, EV_GRID_END, SYNC_FULL, SYNC_EMPTY, SYNC_OCV  # noqa: E402
from bms.soc import Soc  # noqa: E402
from bms import kernels  # noqa: E402
from bms.grid import Grid  # noqa: E402
from bms import signals as S  # noqa: E402

out = {}


def make(cap_mah=100000, cells=16, **kw):
    d = {"cells": cells, "temps": 4, "capacity_mah": cap_mah, "chemistry": "LFP"}
    d.update(kw)
    cfg = Config(d)
    st = State(cells, 4)
    st.valid_scans = 1
    st.fresh = 1
    return cfg, st


def set_cells(st, mv):
    for i in range(st.n_cells):
        st.cell_mv[i] = mv
    sig = st.sig
    sig[S.CELL_MIN_MV] = mv
    sig[S.CELL_MAX_MV] = mv
    sig[S.CELL_SUM_MV] = mv * st.n_cells
    sig[S.PACK_MV] = mv * st.n_cells


def set_current(st, ma):
    sig = st.sig
    sig[S.CURRENT_MA] = ma
    sig[S.CHARGE_MA] = ma if ma > 0 else 0
    sig[S.DISCHARGE_MA] = -ma if ma < 0 else 0


def run(soc, st, ticks, dt=100, t0=0):
    st.dt_ms = dt
    now = t0
    for _ in range(ticks):
        now += dt
        soc.tick(st, now)
    return now


def events(st, code):
    r = []
    for j in range(st.ev_count):
        i = ((st.ev_head - st.ev_count + j) % 64) * 4
        if st.events[i + 1] == code:
            r.append([st.events[i + 2], st.events[i + 3]])
    return r


def temps(st, dc):
    st.sig[S.TEMP_MIN_DC] = dc
    st.sig[S.TEMP_MAX_DC] = dc


# 1. boot without a record: first guess from the OCV; then counting with the
#    charge efficiency: 50 A for 1 h adds 49.9 Ah at 99.8 %.
# the table arithmetic below without an IR correction or a surface-SOC lag
cfg, st = make(soc_cell_r_uohm=0, soc_lag_fast_cpct_per_c=0, soc_diffusion_cpct_per_c=0)
soc = Soc(cfg, kernels)
temps(st, 250)
set_cells(st, 3214)  # 30 % on the firmware's table
set_current(st, 0)
run(soc, st, 1)
boot_soc = st.soc_cpct
st.soc_cpct = 2000
st.soc_q_mah = -1
set_current(st, 50000)
run(soc, st, 36000)
out["count"] = {"boot_soc": boot_soc, "after": st.soc_cpct, "q_mah": st.soc_q_mah, "rem": st.soc_q_rem,
                "energy_in_wh": st.energy_in_wh}

# 2. end of charge: top voltage, current tapered below 0.05C for 20 s -> 100 %
set_cells(st, 3500)
set_current(st, 3000)
run(soc, st, 150)  # 15 s: not yet
before = st.soc_cpct
run(soc, st, 60)
out["full"] = {"before": before, "after": st.soc_cpct, "sync": st.soc_sync, "events": events(st, EV_SOC_SYNC)}

# 3. discharge 80 Ah, then the cut-off: lowest cell at 2800 mV for 2 s
set_cells(st, 3250)
set_current(st, -80000)
run(soc, st, 36000)
counted = st.soc_cpct
st.sig[S.CELL_MIN_MV] = 2800
run(soc, st, 25)
out["empty"] = {"counted": counted, "after": st.soc_cpct, "synced": events(st, EV_SOC_SYNC)[-1], "sync": st.soc_sync, "capacity": st.capacity_mah,
                "cap_events": events(st, EV_CAPACITY)}

# 3b. the same cut-off with the LFP preset's surface-SOC lag (675 + 1097
#    0.01 % per C, 15 s and 314 s): after 1 h at 0.8C both lags have
#    settled, the sync adds 0.8 x 1772 = 1417.6 -> 1417; the lag then decays
#    at rest; a 10 ms tick and a 1 s tick settle to the same lag.
lag = {}
for tick_ms in (1000, 10):
    cfg, st = make(soc_cell_r_uohm=0)
    soc = Soc(cfg, kernels)
    temps(st, 250)
    set_cells(st, 3250)
    set_current(st, 0)
    run(soc, st, 1, dt=tick_ms)
    set_current(st, -80000)
    run(soc, st, 3600000 // tick_ms, dt=tick_ms, t0=tick_ms)
    lag[tick_ms] = st.sig[S.SOC_LAG_CPCT]
st.sig[S.CELL_MIN_MV] = 2800
run(soc, st, 250, dt=10, t0=3601000)
synced = events(st, EV_SOC_SYNC)[-1]
set_cells(st, 3000)
set_current(st, 0)
run(soc, st, 15000, dt=10, t0=3610000)  # 150 s at rest
rest150 = st.sig[S.SOC_LAG_CPCT]
out["lag"] = {"lag_1s": lag[1000], "lag_10ms": lag[10], "synced": synced, "rest150": rest150}

# 4. OCV at rest: on the plateau nothing changes; at the lower knee the
#    SOC follows the OCV after soc_rest_ms (30 min) and 16 scans.
cfg, st = make()
soc = Soc(cfg, kernels)
temps(st, 250)
st.soc_cpct = 5000
set_cells(st, 3267)  # 50 % plateau
set_current(st, 200)  # below the rest current (0.005C = 500 mA)
run(soc, st, 18000 + 40)
plateau = st.soc_cpct
cfg, st = make()
soc = Soc(cfg, kernels)
temps(st, 250)
st.soc_cpct = 3000
set_cells(st, 3142)  # 15 % on the lower knee
st.cell_mv[3] = 3142 + 40  # one cell higher: the lowest decides
set_current(st, 0)
run(soc, st, 17990)
early = st.soc_cpct
run(soc, st, 40)
out["ocv"] = {"plateau": plateau, "early": early, "knee": st.soc_cpct, "sync": st.soc_sync}

# 5. temperature: usable charge at -10 degC
cfg, st = make()
soc = Soc(cfg, kernels)
st.soc_cpct = 5000
set_cells(st, 3267)
set_current(st, 0)
temps(st, -100)
run(soc, st, 2)
cold = st.usable_mah
temps(st, 250)
run(soc, st, 2)
out["temp"] = {"cold_usable": cold, "warm_usable": st.usable_mah}

# 6. a 2,000 Ah pack at 1,000 A for 2 h each way: every int stays a 31-bit small int
cfg, st = make(cap_mah=2000000, max_charge_ma=600000, max_discharge_ma=199000)
soc = Soc(cfg, kernels)
temps(st, 250)
st.soc_cpct = 0
worst = 0
for ma, mv in ((999999, 3300), (-999999, 3250)):
    set_cells(st, mv)
    set_current(st, ma)
    for _ in range(72):
        run(soc, st, 100, 1000)
        for v in (st.soc_q_mah, st.soc_q_rem, soc.acc_mah, soc.acc_rem, soc.e_rem, st.energy_in_wh, st.energy_out_wh,
                  soc.lag_u[0], soc.lag_u[1], soc.lag_rem[0], soc.lag_rem[1]):
            a = v if v >= 0 else -v
            if a > worst:
                worst = a
out["big"] = {"worst": worst, "soc": st.soc_cpct}

# 7. grid events: arguments, reserve, deadline, energy; the tick without allocation
cfg, st = make(grid_reserve_cpct=3000)
grid = Grid(cfg, kernels)
set_cells(st, 3250)  # pack 52.0 V, above the reserve's OCV (3214 mV)
st.soc_cpct = 3500
st.soc_sync_cpct = 3500  # just synchronised: no margin yet
st.contactor_state = 3
st.dcl_ma = 100000
errors = []
for args in ((0, 60), (20000, 60), (1000, 0), (1000, 100000), ("1000", 60)):
    try:
        grid.start(st, 0, args[0], args[1])
        errors.append(None)
    except ValueError as e:
        errors.append(str(e))
st.contactor_state = 0
try:
    grid.start(st, 0, 1000, 60)
    errors.append(None)
except ValueError as e:
    errors.append(str(e))
st.contactor_state = 3
grid.start(st, 0, 2000, 600)
busy = None
try:
    grid.start(st, 0, 2000, 600)
except ValueError as e:
    busy = str(e)
set_cells(st, 3250)  # pack 52.0 V
set_current(st, -40000)
st.dt_ms = 100
now = 0
ask = []
micropython.heap_lock()
try:
    for _ in range(36000):
        now += 100
        grid.tick(st, now)
        if len(ask) == 0:
            pass
        if not st.grid_active:
            break
finally:
    micropython.heap_unlock()
ask = st.grid_ma
out["grid_deadline"] = {"errors": errors, "busy": busy, "active": st.grid_active, "reason": st.grid_reason,
                        "mwh": st.grid_mwh_event, "end_ms": now, "ends": events(st, EV_GRID_END)}
st.soc_cpct = 3200
grid.start(st, now, 2000, 3600)
grid.tick(st, now + 100)
asked = st.grid_ma
st.soc_cpct = 3000
grid.tick(st, now + 200)
out["grid_reserve"] = {"asked_ma": asked, "active": st.grid_active, "reason": st.grid_reason, "total_wh": st.grid_wh_total}
st.soc_cpct = 2900
try:
    grid.start(st, now, 2000, 3600)
    out["grid_below"] = None
except ValueError as e:
    out["grid_below"] = str(e)

# cancel: ends a running event, then there is nothing to cancel
st.soc_sync_cpct = 5000
st.soc_cpct = 5000
grid.start(st, now, 1000, 600)
c1 = grid.cancel(st, now + 100)
c2 = grid.cancel(st, now + 200)
out["grid_cancel"] = {"first": c1, "second": c2, "reason": st.grid_reason, "active": st.grid_active, "ma": st.grid_ma}

# the margin: 67 % counted since a sync at 100 % may be 10 % of that off
# while the capacity is the rated one, 3 % once it has been estimated
st.soc_sync_cpct = 10000
st.soc_cpct = 3300
try:
    grid.start(st, now, 2000, 3600)
    out["grid_margin_unlearned"] = None
except ValueError as e:
    out["grid_margin_unlearned"] = [str(e), st.grid_floor_cpct]
st.capacity_learned = 1
st.soc_cpct = 3200
try:
    grid.start(st, now, 2000, 3600)
    out["grid_margin"] = None
except ValueError as e:
    out["grid_margin"] = [str(e), st.grid_floor_cpct]
st.soc_sync_cpct = -1
st.soc_cpct = 3900
try:
    grid.start(st, now, 2000, 3600)
    out["grid_unsynced"] = None
except ValueError as e:
    out["grid_unsynced"] = [str(e), st.grid_floor_cpct]

# 8. the SOC tick through counting, a full sync and an OCV correction
#    under heap_lock (the event ring and the capacity estimate included)
cfg, st = make()
soc = Soc(cfg, kernels)
temps(st, 250)
st.soc_cpct = 9000
run(soc, st, 2)
err = None
micropython.heap_lock()
try:
    set_cells(st, 3500)
    set_current(st, 20000)
    run(soc, st, 50)
    set_current(st, 1000)
    run(soc, st, 250)
    set_cells(st, 3142)
    set_current(st, -50000)
    run(soc, st, 200)
    set_current(st, 0)
    run(soc, st, 18100)
except MemoryError:
    err = "MemoryError"
finally:
    micropython.heap_unlock()
out["lock"] = {"error": err, "syncs": events(st, EV_SOC_SYNC)}

# 9. the voltage floor re-arms only while charging: a cell that relaxes
#    back above it at rest stays refused; 5 s of charge above it re-arms.
cfg, st = make(grid_reserve_cpct=3000)
grid = Grid(cfg, kernels)
temps(st, 250)
st.dt_ms = 100
st.valid_scans = 1
set_cells(st, 3150)  # below the reserve's OCV (3214 mV)
set_current(st, -40000)
run(grid, st, 60)  # 6 s below the floor
tripped = st.grid_vlow
set_cells(st, 3300)  # relaxed: 86 mV above it, for 10 min at rest
set_current(st, 0)
run(grid, st, 6000, t0=6000)
relaxed = st.grid_vlow
set_current(st, 20000)  # charging 0.2C
run(grid, st, 49, t0=606000)
early = st.grid_vlow
run(grid, st, 2, t0=610900)
out["vfloor_rearm"] = {"tripped": tripped, "relaxed": relaxed, "early": early, "charged": st.grid_vlow}
print(json.dumps(out))
