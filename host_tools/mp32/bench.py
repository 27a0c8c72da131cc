"""The memory table on 32 bits (`make bench`): the firmware from bytecode
.mpy on the 32-bit MicroPython (WebAssembly port), assembled as on a
board with its console and persistence, running the 1-hour scenario's
recorded sensor frames at 16, 36 and 96 cells: heap after boot, its peak
over the hour (held plus one cycle's garbage, the runner collecting once
per cycle), module code against firmware data; and the tick time on that port, which says
nothing about a board's."""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path

from host_tools import scenario
from host_tools.firmware import FIRMWARE, ROOT
from host_tools.mp32 import node
from host_tools.mp32.replay import record_sc

HERE = Path(__file__).resolve().parent
GOAL = 64 * 1024
CEILING = 96 * 1024


def bytecode_firmware(dest: Path) -> Path:
    """bms/**.py -> bytecode-only .mpy (loads on any port); the viper
    kernels (bms/kernels.py) are left out: this port runs the twins."""
    from host_tools.flash import compile_mpy, mpy_cross_path
    mpy_cross = mpy_cross_path()
    for src in sorted((FIRMWARE / "bms").rglob("*.py")):
        if src.name == "kernels.py" and src.parent.name == "bms":
            continue
        compile_mpy(mpy_cross, None, src, dest / src.relative_to(FIRMWARE).with_suffix(".mpy"))
    return dest


def run_once(fw: Path, work: Path, heap: int, state=None, timeout: float = 1800) -> dict:
    """state: (SOC, capacity mAh) of a state record the board boots from."""
    root = work / "root"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    if state is not None:
        from host_tools.sim import write_state_record
        write_state_record(root, int(round(state[0] * 10000)), 0)
    p = node.run(HERE / "bench_fw.py", ("/rp/config.json", "/rp/rx.bin", "/rp/root"),
                 puts=((fw, "/fw"), (work, "/rp")), heap=heap, timeout=timeout, check_rc=False, step="step")
    lines = p.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1]) if lines else {"error": "no output"}
    except ValueError:
        out = {"error": lines[-1][:200]}
    if p.returncode and "error" not in out:
        out["error"] = "exit %d: %s" % (p.returncode, p.stderr.strip()[-200:])
    return out


def fits(fw: Path, work: Path, heap: int, state=None) -> bool:
    """The whole run inside a GC heap of `heap` bytes: no error and the
    heap never grew (bench_fw.py's "grew"; this build grows where a
    board's fixed heap raises MemoryError)."""
    out = run_once(fw, work, heap, state)
    return "error" not in out and out.get("grew", 1) == 0


def smallest_heap(fw: Path, work: Path, lo: int, hi: int, step: int = 1024, state=None) -> int | None:
    """The least heap (a multiple of `step`) that runs the recorded frames,
    bisected between `lo` (too small: below what the firmware holds) and
    `hi`, which is first checked and doubled up to 4 x until it fits."""
    lo, hi = lo // step * step, -(-hi // step) * step
    for _ in range(3):
        if fits(fw, work, hi, state):
            break
        lo, hi = hi, hi * 2
    else:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if fits(fw, work, mid, state):
            hi = mid
        else:
            lo = mid
    return hi


def table(cells=(16, 36, 96), max_ticks: int | None = None, smallest: bool = True) -> list[dict]:
    sc0 = scenario.load(ROOT / "scenarios" / "bench_1h.toml")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bms32-bench-") as tmp:
        tmp = Path(tmp)
        fw = bytecode_firmware(tmp / "fw")
        for n in cells:
            sc = copy.deepcopy(sc0)
            sc.pack.cells = n
            sc.pack.temps = max(4, n // 4)
            config, rec = record_sc(sc, max_ticks=max_ticks)
            work = tmp / f"w{n}"
            work.mkdir()
            (work / "config.json").write_text(json.dumps(config))
            (work / "rx.bin").write_bytes(b"".join(s for s, _ in rec))
            out = run_once(fw, work, 1 << 20)
            if smallest and "error" not in out:
                # nothing fits below what the firmware holds after a collect
                out["smallest"] = smallest_heap(fw, work, out["live_max"], max(out["peak"], out["boot_peak"]) + 4096)
            out["cells"] = n
            out["recorded_ticks"] = len(rec)
            rows.append(out)
    return rows


def print_table(rows) -> None:
    print("Firmware on the 32-bit MicroPython 1.27 (WebAssembly port under Node.js), from bytecode .mpy, assembled as on a board\n"
          "(app, state record + event log, serial console with telemetry), the 1-hour bench scenario's recorded frames (100 ms ticks)")
    print(f"{'cells':>5} {'ticks':>6} {'code KiB':>9} {'data KiB':>9} {'after boot KiB':>15} {'held max KiB':>13} "
          f"{'peak KiB':>9} {'boot peak KiB':>14} {'smallest heap KiB':>18} {'vs 64 KB goal':>14} {'vs 96 KB ceiling':>17} {'tick mean us*':>13}")
    k = lambda b: f"{b / 1024:.1f}"  # noqa: E731
    for r in rows:
        if "error" in r:
            print(f"{r['cells']:>5} failed: {r['error']}")
            continue
        # held against the goal: the hour's peak (the boot's peak on this port over-states a board's, below)
        sm = r.get("smallest")
        p = r["peak"]
        print(f"{r['cells']:>5} {r['ticks']:>6} {k(r['code']):>9} {k(r['data']):>9} {k(r['booted']):>15} {k(r['live_max']):>13} "
              f"{k(r['peak']):>9} {k(r['boot_peak']):>14} {(k(sm) if sm else 'not run'):>18} "
              f"{('within' if p <= GOAL else 'OVER'):>14} {('within' if p <= CEILING else 'OVER'):>17} "
              f"{r['tick_mean_us']:>13}")
    print("(code: heap taken by importing the firmware's modules; data: what boot builds; after boot, held max (after each\n"
          " cycle's collect) and peak (before it: held plus one cycle's garbage) include the interpreter's own %s KiB.\n"
          " boot peak: the most held during one start-up stage (%s); this build frees nothing inside a call, so\n"
          " it is that stage's whole allocation, garbage included, where a board's GC frees as it goes: an upper bound.\n"
          " smallest heap: the least GC heap (1 KiB steps, GC tables included, as a port's heap size is set) that boots and\n"
          " runs the hour without the heap growing, fragmentation included (this build adds a heap area where a board's\n"
          " fixed heap raises MemoryError; bench_fw.py sees it): on this port, so bounded by the boot peak above.\n"
          " Goal 64 KB, ceiling 96 KB (KB = 1024 bytes here), held against the hour's peak.\n"
          " * tick time (tick + persistence + console) on WebAssembly under Node.js with the plain-Python kernels: NOT\n"
          " comparable to a board)" % (k(rows[0]["interpreter"]) if rows and "interpreter" in rows[0] else "?",
                                        rows[0].get("boot_peak_in", "?") if rows else "?"))


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cells", type=int, nargs="+", default=[16, 36, 96])
    ap.add_argument("--ticks", type=int, default=None, help="only the first N ticks of the hour")
    ap.add_argument("--no-smallest", action="store_true", help="skip the smallest-heap bisection (~5 runs per size)")
    a = ap.parse_args(argv)
    print_table(table(a.cells, a.ticks, smallest=not a.no_smallest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
