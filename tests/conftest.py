"""Shared helpers: run code under the MicroPython unix port with the
firmware on its path (firmware is never imported into CPython)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from host_tools.firmware import FIRMWARE, micropython_binary

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def mp_run(code: str, timeout: float = 60, args=()) -> subprocess.CompletedProcess:
    prog = f"import sys\nsys.path.insert(0, {str(FIRMWARE)!r})\n" + code
    return subprocess.run([micropython_binary(), *args, "-c", prog], capture_output=True, text=True, timeout=timeout)


class MpWorker:
    """A long-lived MicroPython process answering one JSON request per line."""

    def __init__(self, script: Path):
        self.proc = subprocess.Popen([micropython_binary(), str(script), str(FIRMWARE)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def call(self, req: dict):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("MicroPython worker died")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def kernel_worker():
    w = MpWorker(Path(__file__).parent / "mp_kernel_worker.py")
    yield w
    w.close()


# -- parallel runs (pytest-xdist, `make test` runs -n 2 --dist loadgroup) ------
# Modules whose module-scoped fixture is expensive (a virtual board flashed
# and booted, one MicroPython run feeding every test): their tests stay on
# one worker, so the fixture is built once.
ONE_WORKER_MODULES = ("test_virtual_board.py", "test_soc.py", "test_lock_vboard.py", "test_gateway.py",
                      "test_lock_standby.py")  # one board, tests in order
# Longest first, so the last test to start is a short one (the run ends
# when its slowest worker does). Seconds per test (or per module for a
# one-worker module) measured in a `make test` run on 2 loaded cores; a test
# not listed counts as short. A new test that takes more than ~10 s belongs
# here.
LONG_TESTS_S = {
    "test_mp32_soak.py::test_first_day_of_the_month_on_32_bits": 150,
    "test_campaign.py::test_short_campaign": 86,
    "test_console.py::test_100k_hostile_lines": 82,
    "test_protection_stateful.py::": 63,
    "test_afe_scenarios.py::test_short_default_profile_through_chip_model[bq76952]": 38,
    "test_soc_scenarios.py::test_soc_day_error_after_the_first_synchronisation": 36,
    "test_virtual_board.py::": 35,
    "test_thermal.py::test_thermal_scenario[thermal_pump_energy.toml]": 26,
    "test_compile.py::test_compiles[xtensawin]": 21,
    "test_afe_scenarios.py::test_short_default_profile_through_chip_model": 20,
    "test_scenarios.py::test_default_scenario_meets_its_expectations": 19,
    "test_campaign_dims.py::": 18,
    "test_soc_scenarios.py::test_without_measurement_windows": 16,
    "test_kernels_diff.py::test_scale_cells": 15,
    "test_compile.py::test_compiles": 15,
    "test_boots.py::": 15,
    "test_board_configs.py::test_firmware_compiles_for_the_boards_architecture": 11,
    "test_kernels_diff.py::test_fault_rows": 14,
    "test_thermal.py::": 12,
    "test_soc_scenarios.py::": 11,
    "test_kernels_diff.py::": 8,
    "test_flash.py::test_build_for_each_architecture": 7,
    "test_lock_vboard.py::": 40,
    "test_cluster.py::test_campaign_on_a_local_cluster": 8,
    "test_fleet.py::test_small_fleet": 10,
    "test_gateway.py::": 65,
    "test_lock_standby.py::": 25,
}


def pytest_configure(config):
    # Each xdist worker on its own core: Simulation.run() pins a lock-step
    # pair to the core its pid picks, and two workers whose pids pick the
    # same core would share it while the other idles.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if worker.startswith("gw") and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if 1 < count <= len(cpus):
            os.sched_setaffinity(0, {cpus[int(worker[2:]) % len(cpus)]})


def _expected_s(item) -> float:
    nodeid = item.nodeid.split("/")[-1]
    return max((s for p, s in LONG_TESTS_S.items() if nodeid.startswith(p)), default=1.0)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in ONE_WORKER_MODULES:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    # Same order on every worker (xdist checks): a stable sort on a table.
    items.sort(key=_expected_s, reverse=True)


def wait_for(cond, timeout_s=10.0):
    """Polls cond() every 50 ms until it gives a true value (returned) or
    timeout_s passes (None): for tests against a board or a service
    running in real time."""
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return None


SIM_BOARD = {"board": "sim", "hal": "sim", "name": "virtual", "mcu": "unix"}


def flash_virtual(fs: Path, board: dict, config_text: str, key: bytes) -> None:
    """A virtual board's filesystem as `bmsctl flash` leaves it: the
    firmware, board.json, config.json (text as given: a test may hand in a
    broken one) and the production key."""
    import shutil
    shutil.copytree(FIRMWARE / "bms", fs / "bms")
    shutil.copy(FIRMWARE / "main.py", fs / "main.py")
    (fs / "board.json").write_text(json.dumps(board))
    (fs / "config.json").write_text(config_text)
    (fs / "key.bin").write_bytes(key)

