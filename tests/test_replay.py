"""bmsctl replay: a simulator run recorded and replayed gives the same
decisions; a single-cell trace expanded to 16 cells replays with SOC
figures; gaps reach the firmware as missing readings; every bad-input class
is refused naming file, row and column, before anything runs."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from host_tools import trace
from tests.conftest import ROOT


def bmsctl(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_a_recorded_sim_run_replays_to_the_same_decisions(tmp_path):
    # the charger-failure scenario: balancing, limits, three fault rows and the contactors opening
    src = (ROOT / "scenarios" / "charger_no_stop.toml").read_text().splitlines()
    sc = tmp_path / "sc.toml"
    sc.write_text("\n".join(line for line in src if not line.startswith("clock_start_ms")))
    rec, d_sim, d_rep = tmp_path / "rec.csv", tmp_path / "sim.csv", tmp_path / "rep.csv"
    r = bmsctl("sim", str(sc), "--record", str(rec), "--decisions", str(d_sim))
    assert r.returncode == 0, r.stdout + r.stderr
    r = bmsctl("replay", str(rec), "--scenario", str(sc), "--decisions", str(d_rep))
    assert r.returncode == 0, r.stdout + r.stderr
    sim_rows, rep_rows = d_sim.read_text().splitlines(), d_rep.read_text().splitlines()
    # ~610 ticks: with the plant's surface-SOC lag a 0.5C charge from 95 %
    # reaches the over-voltage rows within about a minute
    assert len(sim_rows) > 500
    assert any("CELL_OV_CRIT" in row and ",open," in row for row in sim_rows), "the run decides nothing worth comparing"
    assert rep_rows == sim_rows
    assert "CELL_OV raised" in r.stdout and "contactors      0:00:00 precharge" in r.stdout


def test_single_cell_trace_expanded_to_16_cells_prints_soc_figures(tmp_path):
    plot = tmp_path / "sc.png"
    r = bmsctl("replay", "tests/data/single_cell_lfp.csv", "--scenario", "scenarios/default.toml", "--single-cell",
               "--column", "cell=cell_v", "--column", "temp=temp_c", "--tick", "1 s", "--plot", str(plot))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "one cell expanded to 16 in series" in out
    assert "SOC error       whole record: RMS" in out
    assert "SOC error       after the first synchronisation (full)" in out
    assert plot.stat().st_size > 10000
    print(out)


def _generic(path, n=16, m=4, rows=60, period_s=1.0, drop=()):
    head = ["time_s", "current_a"] + [f"cell{i + 1}_v" for i in range(n)] + [f"temp{i + 1}_c" for i in range(m)]
    lines = [",".join(head)]
    for k in range(rows):
        if k in drop:
            continue
        lines.append(",".join([f"{k * period_s:g}", "-10.0"] + [f"{3.300 - 0.0001 * k + 0.001 * (i % 3):.4f}" for i in range(n)]
                              + [f"{25 + 0.1 * (k % 2):.1f}"] * m))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_gap_reaches_the_firmware_as_missing_readings(tmp_path):
    csv_path = _generic(tmp_path / "gap.csv", drop=range(20, 40))
    tr = trace.load(csv_path, 16, 4)
    ticks = trace.resample(tr, 1.0)
    # 1 s samples: a sample up to 2 s old still counts (ticks 20, 21 hold sample 19); ticks 22..39 have none
    assert ticks.max_gap_s == 2.0 and ticks.gap.sum() == 18 and ticks.gap[22:40].all()
    dec = tmp_path / "dec.csv"
    r = bmsctl("replay", str(csv_path), "--scenario", "scenarios/default.toml", "--decisions", str(dec))
    assert r.returncode == 0 or "STALE_MEASUREMENT" in r.stdout, r.stdout + r.stderr
    rows = dec.read_text().splitlines()[1:]
    assert sum(row.split(",")[1] == "1" for row in rows) == 18
    assert "STALE_MEASUREMENT raised" in r.stdout, r.stdout
    assert "gaps            18 ticks" in r.stdout


def _write(path, text):
    path.write_text(text)
    return path


HEAD = "time_s,current_a," + ",".join(f"cell{i + 1}_v" for i in range(4)) + ",temp1_c"


@pytest.mark.parametrize("kind, text, kwargs, want", [
    ("missing column", "time_s,current_a,cell1_v,cell2_v,cell3_v,cell4_v\n0,1,3.3,3.3,3.3,3.3\n", {},
     "row 1: missing column 'temp{i}_c'"),
    ("time backwards", HEAD + "\n0,1,3.3,3.3,3.3,3.3,25\n2,1,3.3,3.3,3.3,3.3,25\n1,1,3.3,3.3,3.3,3.3,25\n", {},
     "row 4, column time_s: time goes backwards"),
    ("duplicate time", HEAD + "\n0,1,3.3,3.3,3.3,3.3,25\n1,1,3.3,3.3,3.3,3.3,25\n1,1,3.3,3.3,3.3,3.3,25\n", {},
     "row 4, column time_s: duplicate time stamp"),
    ("unparsable", HEAD + "\n0,1,3.3,3.3,3.3,3.3,25\n1,1,3.3,3.3,3,3x,25\n", {},
     "row 3, column cell4_v: '3x' is not a number"),
    ("volts declared mV", HEAD.replace("_v", "_mv") + "\n0,1,3.3,3.3,3.3,3.3,25\n1,1,3.3,3.3,3.3,3.3,25\n",
     {"columns": {"cell": "cell{i}_mv"}, "units": {"cell": "mV"}}, "row 2, column cell1_mv: median 0.0033 V is no cell voltage"),
    ("millivolts declared V", HEAD + "\n0,1,3300,3300,3300,3300,25\n1,1,3.3,3.3,3.3,3.3,25\n", {},
     "row 2, column cell1_v: 3300 V is no cell voltage"),
    ("temperature in K declared degC", HEAD + "\n0,1,3.3,3.3,3.3,3.3,298\n", {},
     "row 2, column temp1_c: 298 degC is outside"),
    ("SOC fraction declared %", HEAD + ",soc_ref\n0,1,3.3,3.3,3.3,3.3,25,0.5\n1,1,3.3,3.3,3.3,3.3,25,0.51\n", {},
     "row 2, column soc_ref: every SOC is at most 1 %"),
    ("cell count", HEAD + "\n0,1,3.3,3.3,3.3,3.3,25\n", {"cells": 16},
     "row 1, column cell4_v: 4 cell columns, the configuration has 16 cells"),
    ("short row", HEAD + "\n0,1,3.3,3.3,3.3,3.3\n", {}, "row 2: 6 fields, the header has 7"),
])
def test_bad_input_names_file_row_and_column(tmp_path, kind, text, kwargs, want):
    p = _write(tmp_path / "bad.csv", text)
    kw = dict(kwargs)
    cells = kw.pop("cells", 4)
    with pytest.raises(trace.TraceError) as e:
        trace.load(p, cells, 1, **kw)
    assert str(e.value).startswith(str(p)), e.value
    assert want in str(e.value), e.value


def test_monitor_time_going_back_is_a_reboot_and_a_second_header_is_refused(tmp_path):
    head = "host_time,t_ms,tl,contactor,i_ma,pack_mv,soc_cpct,cell1_mv,temp1_dc"
    ok = "1,1000,1,closed,0,3300,5000,3300,250\n"
    p = _write(tmp_path / "m.csv", head + "\n" + ok + "2,500,2,closed,0,3300,5000,3300,250\n")
    with pytest.raises(trace.TraceError, match=r"row 3, column t_ms: .*rebooted"):
        trace.load(p, 1, 1)
    # the ticks_ms wrap is not a reboot
    p = _write(tmp_path / "w.csv", head + "\n" + f"1,{2**30 - 500},1,closed,0,3300,5000,3300,250\n"
               + "2,500,2,closed,0,3300,5000,3300,250\n")
    assert np.allclose(trace.load(p, 1, 1).t_s, [0, 1.0])
    p = _write(tmp_path / "h.csv", head + "\n" + ok + head + "\n")
    with pytest.raises(trace.TraceError, match="row 3: a second header row"):
        trace.load(p, 1, 1)


def test_bad_input_runs_nothing(tmp_path):
    p = _generic(tmp_path / "bad.csv")
    lines = p.read_text().splitlines()
    lines[40] = lines[40].replace("3.2", "3,2", 1)  # a decimal comma: one field too many
    p.write_text("\n".join(lines) + "\n")
    dec = tmp_path / "dec.csv"
    r = bmsctl("replay", str(p), "--scenario", "scenarios/default.toml", "--decisions", str(dec))
    assert r.returncode == 2 and f"{p}: row 41: 23 fields, the header has 22" in r.stderr, r.stderr
    assert not dec.exists() and r.stdout == ""


def test_a_mapping_file_renames_columns_converts_units_and_flips_the_sign(tmp_path):
    m = _write(tmp_path / "map.toml", 'current_sign = "discharge_positive"\n[columns]\ntime = "Test_Time(s)"\n'
               'current = "Current(mA)"\ncell = "V{i}"\ntemp = "T"\nsoc = "SOC"\n[units]\ncurrent = "mA"\ncell = "mV"\n'
               'temp = "K"\nsoc = "fraction"\n')
    p = _write(tmp_path / "log.csv", "Test_Time(s),Current(mA),V1,V2,T,SOC\n0,5000,3300,3310,298.15,0.5\n"
               "10,5000,3299,3309,298.25,0.49\n")
    columns, units, sign = trace.load_mapping(m)
    tr = trace.load(p, 2, 3, columns, units, sign)
    assert np.allclose(tr.current_a, [-5.0, -5.0])  # 5 A discharging, + = charge inside
    assert np.allclose(tr.cells_v[1], [3.299, 3.309]) and tr.temps_c.shape == (2, 3)
    assert np.allclose(tr.temps_c[:, 0], [25.0, 25.1]) and np.allclose(tr.soc_ref, [0.5, 0.49])
    with pytest.raises(trace.TraceError, match="unknown key 'colums'"):
        trace.load_mapping(_write(tmp_path / "bad.toml", "[colums]\ntime = 't'\n"))
