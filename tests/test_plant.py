"""Host-side plant physics checks (CPython; the firmware is not involved)."""
import numpy as np

from host_tools import scenario
from host_tools.plant import Pack

from conftest import SCENARIOS


def _pack(**thermal):
    sc = scenario.load(SCENARIOS / "default.toml")
    sc.pack.capacity_spread = sc.pack.r0_spread = 0.0  # identical cells: position is all that differs
    for k, v in thermal.items():
        setattr(sc.thermal, k, v)
    return Pack(sc)


def test_daily_ambient_profile():
    p = _pack(ambient_c=25.0, daily_swing_c=10.0, peak_hour=15.0)
    assert abs(p.ambient_at(15 * 3600) - 30.0) < 1e-9
    assert abs(p.ambient_at(3 * 3600) - 20.0) < 1e-9
    assert abs(p.ambient_at(39 * 3600) - 30.0) < 1e-9  # the next day


def test_heat_flows_downhill_and_energy_balances():
    p = _pack()
    p.temp = np.linspace(20.0, 40.0, p.n)
    p.coolant_c = 25.0
    p.ambient_now = 25.0
    p._thermal(np.zeros(p.n), 1.0)
    # no current: the hottest cell cools, the coldest warms
    assert p.temp[-1] < 40.0 and p.temp[0] > 20.0


def test_coolant_path_makes_downstream_cells_warmer():
    p = _pack()
    p.pump_duty = 0.5
    p.current_a = -100.0
    for _ in range(6000):  # 10 min at 1C
        p.step(0.1)
    assert p.temp[-1] > p.temp[0]  # the outlet end runs warmer
    assert p.coolant_out_c > p.coolant_in_c


def test_surface_soc_lag_lowers_the_knee_under_load_and_relaxes_at_rest():
    # LFP, 1C for 10 min from 35 %: the surface runs 0.0675 + 0.1097 x
    # (1 - exp(-600/314)) = 16.1 points of SOC below the bulk, so the OCV
    # the cells show sits low on the knee while the true SOC is still ~18 %
    packs = []
    for diffusion in (True, False):
        sc = scenario.load(SCENARIOS / "default.toml")
        sc.pack.capacity_spread = sc.pack.r0_spread = sc.pack.initial_soc_spread = 0.0
        sc.pack.initial_soc = 0.35
        sc.pack.diffusion = diffusion
        p = Pack(sc)
        p.current_a = -p.cap_as[0] / 3600
        for _ in range(600):
            p.step(1.0)
        loaded = p.cell_v()[0] - p.current_a * p.r0[0] - p.v1[0]  # the OCV part
        true = p.soc[0]
        p.current_a = 0.0
        for _ in range(3600):
            p.step(1.0)
        packs.append((loaded, true, p.cell_v()[0], p))
    (v_lag, soc_lag, rest_lag, p), (v_no, soc_no, rest_no, _) = packs
    assert abs(soc_lag - soc_no) < 1e-9  # the lag moves the voltage, never the charge
    gap = 0.0675 + 0.1097 * (1 - np.exp(-600 / 314))
    assert abs(p.ocv.soc_at(v_lag) - (soc_lag - gap)) < 0.002
    assert v_no - v_lag > 0.1  # on the knee: more than 100 mV lower
    assert abs(rest_lag - rest_no) < 0.002  # after 1 h at rest both read the same OCV
