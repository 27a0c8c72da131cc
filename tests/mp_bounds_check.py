# Run under MicroPython: the SOC band and the grid's voltage floor are
# sound under their error model. Cells are made from the firmware's own
# OCV table (so interpolation is exact) plus every error the model allows
# at its worst: hysteresis branch, front-end error, temperature shift,
# overpotential under load up to soc_polar_mv, an R0 drop the correction
# removes. The true pack SOC must lie inside the band, and a cell above
# the floor must be above the reserve. Prints one JSON line of counts.
import sys
import json
import random
sys.path.insert(0, sys.argv[1])
from array import array
from bms.config import Config
from bms import signals as S
from bms.soc_bounds import SocBounds, pack_cpct
from bms import kernels

out = {}
for chem in ("LFP", "NMC"):
    cfg = Config({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": chem, "soc_cell_r_uohm": 400})
    b = SocBounds(cfg, kernels)
    sig = array("i", [0] * S.N_SIGNALS)
    random.seed(7)
    n = bad_lo = bad_hi = bad_floor = floor_n = 0
    widths = 0
    for case in range(20000):
        s_lo = random.randint(0, 10000)
        s_hi = random.randint(s_lo, 10000)
        t = random.randint(100, 450) if random.randint(0, 1) else random.randint(-200, 450)
        mode = random.randint(0, 2)  # 0 rest (rested), 1 discharging, 2 charging
        cur = 0 if mode == 0 else random.randint(6000, 100000) * (-1 if mode == 1 else 1)
        a = b.base_mv + abs(t - 250) * b.temp_uv // 10000
        ir = b.ir_mv(cur)

        def volt(s):
            # table value, then each error at a random point of its range
            v = b.mv_at(s) + random.randint(-b.hyst_mv, b.hyst_mv) + random.randint(-b.acc_mv, b.acc_mv)
            v += random.randint(-1, 1) * (abs(t - 250) * b.temp_uv // 10000)
            eta = random.randint(0, b.polar_mv) if mode else 0
            return v - eta - ir if mode == 1 else (v + eta + ir if mode == 2 else v)
        sig[S.CELL_MIN_MV] = volt(s_lo)
        sig[S.CELL_MAX_MV] = volt(s_hi)
        if sig[S.CELL_MIN_MV] > sig[S.CELL_MAX_MV]:
            continue
        sig[S.CURRENT_MA] = cur
        sig[S.TEMP_MAX_DC] = t
        sig[S.TEMP_MIN_DC] = t
        b.band(sig, 1 if mode == 0 else 0)
        truth = pack_cpct(s_lo, s_hi)
        n += 1
        widths += b.hi - b.lo
        # one step of the table's integer interpolation either way
        if b.lo > truth + 2:
            bad_lo += 1
        if b.hi < truth - 2:
            bad_hi += 1
        if mode == 1:
            # the floor: a discharging cell on its discharge branch (half the
            # hysteresis below the mean table), front-end error and
            # temperature shift at their worst
            reserve = random.randint(500, 6000)
            f = b.floor_mv(b.mv_at(reserve), sig)
            v = b.mv_at(s_lo) - b.hyst_mv // 2 + random.randint(-b.acc_mv, b.acc_mv) \
                + random.randint(-1, 1) * (abs(t - 250) * b.temp_uv // 10000) - random.randint(0, b.polar_mv) - ir
            sig[S.CELL_MIN_MV] = v
            floor_n += 1
            if b.vmin_corrected(sig) > f and s_lo < reserve:
                bad_floor += 1
    out[chem] = {"cases": n, "lo_above_truth": bad_lo, "hi_below_truth": bad_hi, "floor_cases": floor_n,
                 "floor_passed_below_reserve": bad_floor, "mean_width_cpct": widths // n}
print(json.dumps(out))
