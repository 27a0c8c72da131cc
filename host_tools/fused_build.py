"""Builds host_tools/_fused_loop (the compiled lock-step loop,
host_tools/fused_loop.c) with cffi: `python -m host_tools.fused_build`,
run by `make setup`. Needs a C compiler and the Python headers (gcc and
python3-dev on Debian)."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE = "host_tools._fused_loop"


def ffibuilder():
    from cffi import FFI
    ffi = FFI()
    header = (HERE / "fused_loop.h").read_text()
    ffi.cdef(header)
    # -ffp-contract=off: no fused multiply-add, so every product and sum
    # rounds as CPython's and numpy's do (the twin must agree to the bit).
    ffi.set_source(MODULE, header + (HERE / "fused_loop.c").read_text(),
                   extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math", "-std=gnu11"], libraries=["m"])
    return ffi


def build() -> Path:
    with tempfile.TemporaryDirectory(prefix="bms-fused-") as tmp:
        out = Path(ffibuilder().compile(tmpdir=tmp, verbose=False))
        dest = HERE / out.name
        # a new file renamed over the old: a process that has the old one
        # loaded keeps its (unlinked) copy, never a library rewritten under it
        part = dest.with_name(dest.name + ".part")
        part.write_bytes(out.read_bytes())
        os.replace(part, dest)
    return dest


if __name__ == "__main__":
    try:
        print("built", build().relative_to(HERE.parent))
    except Exception as e:  # the compiler's own message says what is missing
        sys.exit(f"could not build {MODULE}: {e}\n(needs a C compiler and the Python headers: "
                 "apt-get install gcc python3-dev)")
