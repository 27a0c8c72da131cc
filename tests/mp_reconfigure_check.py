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
run(10)
out["still_default"] = app.state.fault_active[crit] == 0 and app.cfg.fault_trip[crit] == 3650
app.reconfigure(Config(dict(base, faults={"CELL_OV_CRIT": [3610, 500, 3450, 5000]})))
run(10)
out["after"] = app.state.fault_active[crit]
out["contactors_open"] = app.state.outputs == 0
print(json.dumps(out))
