"""Shared helpers: run code under the MicroPython unix port with the
firmware on its path (firmware is never imported into CPython)."""
from __future__ import annotations

import json
import subprocess
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
