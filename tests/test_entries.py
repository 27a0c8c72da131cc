"""The two ways of starting the firmware read top to bottom in their own
modules: bms/boot.py (argument parsing for the host simulation, and the
board's configuration read) and bms/board_start.py (the board's start-up)
do not import each other both ways; the sim loop lives with the sim HAL."""
import ast

from host_tools.firmware import FIRMWARE


def imported(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_board_start_does_not_import_boot():
    assert not any(n == "bms.boot" or n.startswith("bms.boot.") for n in imported(FIRMWARE / "bms" / "board_start.py"))


def test_sim_loop_and_hello_live_with_the_sim_hal():
    src = (FIRMWARE / "bms" / "boot.py").read_text()
    assert "def sim_loop" not in src and "def hello" not in src
    sim = (FIRMWARE / "bms" / "hal" / "sim.py").read_text()
    assert "def sim_loop(" in sim and "def hello(" in sim
