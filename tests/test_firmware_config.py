"""The firmware validates its configuration (under MicroPython) and names the
field of any error; nothing of a rejected config is used."""
import json

import pytest

from conftest import mp_run

BASE = {"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"}


def validate(cfg: dict):
    code = (
        "import json\nfrom bms.config import Config, ConfigError\n"
        f"raw = json.loads({json.dumps(json.dumps(cfg))})\n"
        "try:\n    c = Config(raw)\n    print('OK', c.max_charge_ma, c.max_discharge_ma)\n"
        "except ConfigError as e:\n    print('ERR', e)\n"
    )
    r = mp_run(code)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_defaults_from_preset():
    assert validate(BASE) == "OK 50000 100000"


@pytest.mark.parametrize("patch,field", [
    ({"cells": 0}, "config.cells"),
    ({"cells": "16"}, "config.cells"),
    ({"chemistry": "LiPo"}, "config.chemistry"),
    ({"bogus_ms": 1}, "config.bogus_ms"),
    ({"faults": {"CELL_OV_CRIT": [3650, 500, 3700, 1000]}}, "config.faults.CELL_OV_CRIT.recover_mv"),
    ({"faults": {"CELL_OV": [3700, 500, 3400, 1000]}}, "config.faults.CELL_OV"),
    ({"faults": {"NOPE": [1, 1, 1, 1]}}, "config.faults.NOPE"),
    ({"faults": {"CELL_UV": [2800, -1, 3000, 1000]}}, "config.faults.CELL_UV.trip_delay_ms"),
    ({"ccl_taper_mv": [3550, 3450]}, "config.ccl_taper_mv"),
    ({"ccl_taper_mv": [3500, 3640]}, "config.ccl_taper_mv"),
    # a limit reaching zero at its fault's trip would park the cell on it
    ({"ccl_taper_mv": [3500, 3600]}, "config.ccl_taper_mv: the charge limit must reach zero below the CELL_OV trip"),
    ({"dcl_taper_mv": [2900, 2800]}, "config.dcl_taper_mv: the discharge limit must reach zero above the CELL_UV trip"),
    ({"faults": {"CELL_UV": [2860, 1000, 3150, 10000]}}, "config.dcl_taper_mv"),
    ({"cell_gain_q16": [6554] * 15}, "config.cell_gain_q16"),
    ({"cell_gain_q16": 1 << 20}, "config.cell_gain_q16"),
    ({"balance_stop_mv": 20}, "config.balance_stop_mv"),
    # wrong unit: a volt figure or a unit string where integer mV is expected
    ({"balance_floor_mv": 3.4}, "config.balance_floor_mv"),
    ({"balance_floor_mv": "3400 mV"}, "config.balance_floor_mv"),
    ({"faults": {"CELL_OV_CRIT": [3.65, 500, 3450, 5000]}}, "config.faults.CELL_OV_CRIT.trip_mv"),
    # a warning beyond its fault level, a fault beyond its critical level
    ({"faults": {"CELL_OV_WARN": [3620, 1000, 3500, 2000]}}, "config.faults.CELL_OV_WARN"),
    ({"faults": {"CELL_UV": [2400, 1000, 3150, 10000]}}, "config.faults.CELL_UV"),
    ({"faults": {"OT_WARN": [700, 1000, 650, 2000]}}, "config.faults.OT_WARN"),
    ({"imbalance_window_mv": [3400, 3000]}, "config.imbalance_window_mv"),
    ({"faults": {"STUCK_READING": [3000, 0, 3000, 0]}}, "config.faults.STUCK_READING.recover_ms"),
    # settings in ms that count scans must span enough scans at this tick
    ({"tick_ms": 1000, "faults": {"STUCK_READING": [3000, 0, 1000, 0]}},
     "config.faults.STUCK_READING.trip_ms: 3000 ms is less than 10 scans at tick_ms 1000 (10000 ms): a noisy channel"),
    ({"tick_ms": 1000, "faults": {"STALE_MEASUREMENT": [1000, 0, 100, 2000]}},
     "config.faults.STALE_MEASUREMENT.trip_ms: 1000 ms is less than 2 scans at tick_ms 1000"),
    ({"tick_ms": 500, "flow_window_ms": 400}, "config.flow_window_ms: 400 ms is 0 scans at tick_ms 500"),
    ({"tick_ms": 10, "flow_window_ms": 5000}, "config.flow_window_ms: 5000 ms is 500 scans at tick_ms 10; the window holds 1..200"),
])
def test_bad_config_names_the_field(patch, field):
    cfg = dict(BASE)
    cfg.update(patch)
    out = validate(cfg)
    assert out.startswith("ERR " + field), out


def test_every_tick_works_with_the_defaults():
    # the defaults of the rows that count scans stretch to the slower ticks
    code = (
        "from bms.config import Config\nfrom bms import faults as F\n"
        "for t in (10, 20, 30, 50, 100, 200, 300, 500, 700, 1000):\n"
        "    c = Config({'cells': 16, 'temps': 4, 'capacity_mah': 100000, 'chemistry': 'LFP', 'tick_ms': t})\n"
        "    print(t, c.fault_trip[F.index('STUCK_READING')], c.fault_trip[F.index('STALE_MEASUREMENT')], c.flow_window_ms // t)\n"
    )
    r = mp_run(code)
    assert r.returncode == 0, r.stderr
    rows = [list(map(int, line.split())) for line in r.stdout.split("\n") if line.strip()]
    assert len(rows) == 10
    for t, stuck, stale, window in rows:
        assert stuck == max(3000, 10 * t) and stale == max(1000, 2 * t)
        assert window * t <= 1000 < (window + 1) * t  # the 1 s flow window, whole scans


def test_schema_is_not_resident_after_a_config_is_built():
    # bms/config.py loads the schema and the chemistry presets only while it
    # builds a configuration (valid or not) and drops them after, unless
    # someone had them loaded already
    code = (
        "import sys, gc\nfrom bms.config import Config, ConfigError\n"
        f"raw = {BASE!r}\n"
        "c = Config(raw)\n"
        "gone = [m not in sys.modules for m in ('bms.config_schema', 'bms.chemistry', 'bms.config_text')]\n"
        "try:\n    Config(dict(raw, cells=0))\nexcept ConfigError as e:\n    err = str(e)\n"
        "gone += [m not in sys.modules for m in ('bms.config_schema', 'bms.chemistry', 'bms.config_text')]\n"
        "import bms.chemistry\nConfig(raw)\n"
        "print(gone, 'bms.chemistry' in sys.modules, c.cells, err)\n"
    )
    r = mp_run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[True, True, True, True, True, True] True 16 config.cells: 0 out of range 1..256 (cells in series)"


def test_every_integer_setting_has_its_description():
    # the descriptions live apart from the rows (bms/config_text.py): one
    # for every row that does not carry its own, and none for a key not in
    # the schema
    code = (
        "from bms.config_schema import INT_KEYS\nfrom bms.config_text import WHAT\n"
        "print(sorted(k for k in INT_KEYS if len(INT_KEYS[k]) < 3 and not WHAT.get(k)), sorted(k for k in WHAT if k not in INT_KEYS))\n"
    )
    r = mp_run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] []"
