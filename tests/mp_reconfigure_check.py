# Runs under MicroPython: a configuration change applied between ticks takes
# effect at once (everything derived is rebuilt); a bad one changes nothing.
import sys
import json
sys.path.insert(0, sys.argv[1])
from bms.config import Config, ConfigError  # noqa: E402
from bms.app import App  # noqa: E402
from bms import faults as F  # noqa: E402
sys.path.insert(0, sys.argv[1].rstrip("/").rsplit("/", 1)[0] + "/host_tools/mp")
from resting_hal import RestingPackHal  # noqa: E402




base = {"cells": 4, "temps": 2, "capacity_mah": 100000, "chemistry": "LFP"}
hal = RestingPackHal(4, 2)
app = App(Config(base), hal)
t = 0
out = {}


def run(n):
    global t
    for _ in range(n):
        app.tick(t)
        t += 100


crit = F.index("CELL_OV_CRIT")
hal.mv = 3620  # above CELL_OV (3600) but under the default CELL_OV_CRIT (3650)
run(20)
out["before"] = app.state.fault_active[crit]
# a bad configuration: rejected by validation, nothing applied
try:
    app.reconfigure(Config(dict(base, faults={"CELL_OV_CRIT": [3590, 500, 3450, 5000]})))
    out["bad_rejected"] = False
except ConfigError:
    out["bad_rejected"] = True
try:
    app.reconfigure(Config(dict(base, cells=5)))
    out["cells_rejected"] = False
except ValueError:
    out["cells_rejected"] = True
# a rebuild that runs out of memory part-way (a small heap during `config
# set`): the running pipeline stays whole and old, not half swapped
import bms.app as A  # noqa: E402


def _no_memory(cfg, kernels):
    raise MemoryError("memory allocation failed")


stages0, protect0, cfg0 = app.stages, app.protect, app.cfg
real_grid, A.Grid = A.Grid, _no_memory
try:
    app.reconfigure(Config(dict(base, faults={"CELL_OV_CRIT": [3610, 500, 3450, 5000]})))
    out["oom_whole"] = False
except MemoryError:
    out["oom_whole"] = app.stages is stages0 and app.protect is protect0 and app.cfg is cfg0 and app.stages[2] is app.protect
A.Grid = real_grid
run(10)
out["still_default"] = app.state.fault_active[crit] == 0 and app.cfg.fault_trip[crit] == 3650
app.reconfigure(Config(dict(base, faults={"CELL_OV_CRIT": [3610, 500, 3450, 5000]})))
run(10)
out["after"] = app.state.fault_active[crit]
out["contactors_open"] = app.state.outputs == 0
print(json.dumps(out))
