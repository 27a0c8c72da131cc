"""Finding and starting the MicroPython unix port with the firmware."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
BOARD_CONFIGS = ROOT / "board_configs"


def micropython_binary() -> str:
    """The unix-port command: $MICROPYTHON, else the one next to this Python."""
    env = os.environ.get("MICROPYTHON")
    if env:
        return env
    local = Path(sys.executable).parent / "micropython"
    if local.exists():
        return str(local)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("no MicroPython unix port: run `make setup` or set MICROPYTHON")
    return found
