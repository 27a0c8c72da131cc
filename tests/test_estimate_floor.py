"""The owner's reserve and the SOC when the firmware's estimate is wrong
(issue 13, items 1-3): the cells' voltage floor of grid events, the
plausibility of a restored SOC at boot and the running cross-check
(SOC_IMPLAUSIBLE). Figures print with -s."""
import json
import subprocess
from pathlib import Path

from host_tools import frames, report, scenario
from host_tools.firmware import FIRMWARE, micropython_binary
from host_tools.sim import Simulation, write_state_record

from conftest import SCENARIOS
from test_soc_scenarios import run_checked


def test_band_and_floor_are_sound_under_their_error_model():
    r = subprocess.run([micropython_binary(), str(Path(__file__).parent / "mp_bounds_check.py"), str(FIRMWARE)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print("\n", out)
    for chem, c in out.items():
        assert c["cases"] > 10000 and c["floor_cases"] > 3000, chem
        assert c["lo_above_truth"] == 0 and c["hi_below_truth"] == 0, (chem, c)
        assert c["floor_passed_below_reserve"] == 0, (chem, c)


def _lowest_exporting(res):
    return res.soc_true[res.grid_a > 0].min()


def test_a_saved_soc_40_points_high_ends_the_event_at_the_voltage_floor():
    res = run_checked("grid_wrong_soc.toml")
    assert report.reserve_violations(res) == 0
    assert res.soc_fw[0] - res.soc_true[0] > 0.39  # it really believed 85 % at 45 %
    reserve = res.hello["settings"]["grid_reserve_cpct"] / 10000
    # the counted SOC's floor (reserve + 10 % unsynchronised margin) was still far away
    i_end = int((res.grid_a > 0).nonzero()[0][-1])
    assert res.soc_fw[i_end] > reserve + 0.15
    assert _lowest_exporting(res) >= reserve


def test_a_faded_capacity_is_caught_by_the_floor_and_the_cross_check():
    res = run_checked("grid_capacity_fade.toml")
    assert report.reserve_violations(res) == 0
    kinds = [(ms, arg) for ms, code, arg, _v in res.events if code == frames.EV_SOC_SYNC]
    # the count was moved into the cells' band before the empty synchronisation
    cells = [ms for ms, k in kinds if k == 5]
    empty = [ms for ms, k in kinds if k == 2]
    assert cells and empty and cells[0] < empty[0]
    # and the capacity is re-estimated across that move, toward the truth
    assert res.capacity_mah_fw < 90000


def _reboot_into(tmp_path, soc_cpct, plant_soc):
    write_state_record(tmp_path, soc_cpct)
    sc = scenario.load(SCENARIOS / "rest_after_reboot.toml")
    sc.pack.initial_soc = plant_soc
    return Simulation(sc, state_dir=tmp_path).run()


def test_a_restored_soc_the_cells_contradict_is_not_trusted(tmp_path):
    # at 10 % (LFP's lower knee) a record saying 60 % cannot be right
    res = _reboot_into(tmp_path / "a", 6000, 0.10)
    ev = [(arg, v) for _ms, code, arg, v in res.events if code == frames.EV_SOC_DISTRUST]
    assert ev == [(1, 6000)]
    assert abs(res.soc_fw[0] - res.soc_true[0]) < 0.05
    # at 60 % a record saying 5 % is below what the cells allow
    res = _reboot_into(tmp_path / "b", 500, 0.60)
    assert [(a, v) for _ms, c, a, v in res.events if c == frames.EV_SOC_DISTRUST] == [(2, 500)]
    assert res.soc_fw[0] > 0.10
    # on the plateau a record 20 points off is within what the cells allow
    # (the voltage cannot tell): it is kept, and the voltage floor and the
    # cross-check stand guard (README)
    res = _reboot_into(tmp_path / "c", 8000, 0.60)
    assert not [1 for _ms, c, _a, _v in res.events if c == frames.EV_SOC_DISTRUST]
    assert abs(res.soc_fw[0] - 0.80) < 0.002


def test_the_r0_default_follows_the_capacity_and_a_setting_wins():
    from conftest import mp_run
    r = mp_run("from bms.config import Config\n"
               "for d in ({'chemistry': 'LFP', 'capacity_mah': 100000}, {'chemistry': 'LFP', 'capacity_mah': 150000},"
               " {'chemistry': 'NMC', 'capacity_mah': 3000}, {'chemistry': 'LFP', 'capacity_mah': 100000, 'soc_cell_r_uohm': 0}):\n"
               "    d.update(cells=16, temps=4)\n"
               "    print(Config(d).soc_cell_r_uohm)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["300", "200", "20000", "0"]
