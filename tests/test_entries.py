"""The two ways of starting the firmware read top to bottom in their own
modules: bms/sim_start.py (the host simulation's argument parsing and
start-up), bms/boot.py (the board's configuration read) and
bms/board_start.py (the board's start-up); board_start never imports boot,
a board never loads the simulation's entry, and the sim loop lives with
the sim HAL."""
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


def test_the_host_simulations_entry_is_its_own_module():
    boot = (FIRMWARE / "bms" / "boot.py").read_text()
    assert "def _args" not in boot and "--sim" not in boot
    sim = FIRMWARE / "bms" / "sim_start.py"
    assert "def _args(" in sim.read_text()
    names = imported(sim)
    assert not any(n.split(".")[:2] in (["bms", "boot"], ["bms", "board_start"]) for n in names), names
    # boot loads it only for a command line (a board has none)
    tree = ast.parse(boot)
    top = {a.name for node in tree.body if isinstance(node, ast.ImportFrom) for a in node.names} | {
        node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert "bms.sim_start" not in top
