"""MicroPython libraries from PyPI (requirements-mplib.txt), installed by
`make setup` into .venv/mplib with `pip install --target --no-deps`: the
MQTT client and its two helpers. `bmsctl flash` compiles them into a board's
lib/ when its board config has an "mqtt" section; the virtual board finds
them in lib/ as a board does."""
from __future__ import annotations

from pathlib import Path

from host_tools.firmware import ROOT

MPLIB = ROOT / ".venv" / "mplib"
PACKAGES = ("chumicro_mqtt", "chumicro_sockets", "chumicro_timing")
REQUIREMENTS = ROOT / "requirements-mplib.txt"


def lib_sources() -> list[tuple[Path, str]]:
    """(file, path under lib/) for every module the firmware needs, the
    libraries' own test helpers left out."""
    out = []
    for pkg in PACKAGES:
        d = MPLIB / pkg
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: the MicroPython MQTT client is not installed (run make setup)")
        for f in sorted(d.rglob("*.py")):
            if f.name == "testing.py" or "__pycache__" in f.parts:
                continue
            out.append((f, f.relative_to(MPLIB).as_posix()))
    return out

