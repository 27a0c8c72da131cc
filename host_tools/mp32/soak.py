"""The month on 32 bits (scenarios/soak32_month.toml): the plant's sensor
frames recorded on the unix port, fed to the firmware from bytecode .mpy
on the 32-bit MicroPython, assembled as on a board (console, state record
and event log on). Reports MemoryErrors (0 expected), the heap's
high-water mark (what the firmware holds plus one cycle's garbage) and
what it holds at most after each cycle's collect."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from host_tools import frames, scenario
from host_tools.firmware import ROOT
from host_tools.mp32.bench import GOAL, CEILING, bytecode_firmware, run_once
from host_tools.mp32.replay import record_sc
from host_tools.sim import firmware_capacity_mah

SCENARIO = ROOT / "scenarios" / "soak32_month.toml"


def soak(days: float | None = None) -> dict:
    sc = scenario.load(SCENARIO)
    if days is not None:
        sc.profile[0].duration_s = days * 86400
        sc.actions = [a for a in sc.actions if a.at_s < days * 86400]
    with tempfile.TemporaryDirectory(prefix="bms32-soak-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        unix_state = tmp / "unix_state"
        unix_state.mkdir()
        config, rec = record_sc(sc, unix_state)
        t1 = time.perf_counter()
        work = tmp / "w"
        work.mkdir()
        (work / "config.json").write_text(json.dumps(config))
        (work / "rx.bin").write_bytes(b"".join(s for s, _ in rec))
        fw = bytecode_firmware(tmp / "fw")
        # the month: 2.6 M ticks at ~1 ms each on this port
        out = run_once(fw, work, 1 << 20, state=(sc.firmware_soc, firmware_capacity_mah(sc)), timeout=4 * 3600)
        t2 = time.perf_counter()
    # the events ran (the unix-port run of the same frames: grid-active ticks)
    out["grid_active_ticks"] = sum(1 for _, a in rec if a[frames.GRID_OFF + 12])
    out.update(recorded_ticks=len(rec), days=sc.profile[0].duration_s / 86400, grid_events=len(sc.actions),
               record_s=round(t1 - t0, 1), mp32_s=round(t2 - t1, 1))
    return out


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, default=None, help="only the first N days (default: the whole month)")
    a = ap.parse_args(argv)
    r = soak(a.days)
    if "error" in r:
        print(f"soak32: {r.get('days')} days: FAILED: {r['error']}")
        return 1
    k = lambda b: f"{b / 1024:.1f} KiB"  # noqa: E731
    print(f"soak32: {r['days']:.1f} days, {r['ticks']} ticks of 1 s on the 32-bit MicroPython (from .mpy, console and "
          f"persistence on), {r['grid_events']} grid events asked ({r['grid_active_ticks']} s exporting), clock from 1 min before the ticks wrap: "
          f"0 MemoryError, internal error {r['internal_error']}; heap high-water mark {k(r['peak'])} "
          f"(held at most {k(r['live_max'])}; goal {k(GOAL)}, ceiling {k(CEILING)}); "
          f"unix-port recording {r['record_s']} s, 32-bit run {r['mp32_s']} s")
    return 0 if r["ticks"] == r["recorded_ticks"] and not r["internal_error"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
