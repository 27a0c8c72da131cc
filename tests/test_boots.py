"""Boots of the board runner on the chip and pin models (host_tools/mp/boots.py):
a random mix of chip states, faults present at power-up, reset causes and
state records. `make boots` runs 1,000; this is the short version."""
import json
import subprocess

from host_tools.firmware import BOARD_CONFIGS, FIRMWARE, ROOT, micropython_binary


def test_fifty_boots_energise_nothing_early_and_report_every_boot_fault(tmp_path):
    r = subprocess.run([micropython_binary(), str(ROOT / "host_tools" / "mp" / "boots.py"), str(FIRMWARE),
                        str(ROOT / "host_tools" / "mp"), str(BOARD_CONFIGS), str(tmp_path / "boots"), "50", "7"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["boots"] == 50
    assert out["failed"] == 0, out["failures"]
    mix = out["mix"]
    # the draw covered every kind of boot it is meant to
    for key in ("kind:bq", "kind:ltc", "chip:fresh", "chip:half", "chip:configured", "fault:open_wire",
                "fault:hot_cell", "fault:silent", "reset:wdt", "reset:power", "record:valid", "record:latched",
                "record:corrupt", "record:missing"):
        assert mix.get(key, 0) > 0, (key, mix)
    assert out["closed_boots"] > 0  # healthy boots do close (the check is not vacuous)
