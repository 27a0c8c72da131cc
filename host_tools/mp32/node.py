"""Starting the 32-bit MicroPython (host_tools/mp32/run.mjs) from CPython."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from host_tools.firmware import ROOT

RUN_MJS = Path(__file__).resolve().parent / "run.mjs"
PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


class Mp32Missing(RuntimeError):
    pass


def check() -> str:
    """The node command, or a clear error naming what to install."""
    node = shutil.which("node")
    if not node:
        raise Mp32Missing("the 32-bit MicroPython runs under Node.js: install the Debian package `nodejs` "
                          "(and `npm`), then `make setup32`")
    if not (PACKAGE / "micropython.mjs").exists():
        raise Mp32Missing(f"{PACKAGE} is missing: run `make setup32` (npm ci from package-lock.json)")
    return node


def run(script: Path, args=(), puts=(), gets=(), heap: int = 1 << 20, timeout: float = 600,
        check_rc: bool = True, step: str | None = None) -> subprocess.CompletedProcess:
    """Runs SCRIPT on the 32-bit port with a fixed heap of `heap` bytes;
    puts: (host dir, port dir), gets: (port file, host file)."""
    cmd = [check(), str(RUN_MJS), "--heap", str(heap)]
    for src, dst in puts:
        cmd += ["--put", f"{src}:{dst}"]
    for src, dst in gets:
        cmd += ["--get", f"{src}:{dst}"]
    if step:
        cmd += ["--step", step]
    cmd += [str(script), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"32-bit MicroPython: {script.name} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p
