"""bmsctl: the host command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_sim(args) -> int:
    from host_tools import report, scenario
    from host_tools.sim import FirmwareError, run

    try:
        sc = scenario.load(args.file)
        if args.tick:
            from host_tools import units
            try:
                tick = units.parse(args.tick, "time")
            except units.QuantityError as e:
                raise scenario.ScenarioError(f"--tick: {e}") from None
            if not 0.01 <= tick <= 1.0:
                raise scenario.ScenarioError(f"--tick: {args.tick!r} is out of range 10 ms..1 s")
            sc.tick_s = tick
    except scenario.ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        res = run(sc, kernels=args.kernels)
    except FirmwareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(report.summary(res))
    if args.plot:
        path = Path(args.plot)
        path.parent.mkdir(parents=True, exist_ok=True)
        report.plot(res, path)
        print(f"plot            {path.resolve()}")
    verdicts = report.check(res)
    failed = [v for v in verdicts if not v.ok]
    if verdicts:
        print("expectations:")
        for v in verdicts:
            print(f"  [{'PASS' if v.ok else 'FAIL'}] #{v.index} {v.text}: {v.detail}")
    if failed:
        print(f"{len(failed)} of {len(verdicts)} expectations failed", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args) -> int:
    from host_tools import bench

    return bench.main(quick=args.quick)


def cmd_campaign(args) -> int:
    from host_tools import campaign

    return campaign.main(args.repeats, args.nominal, Path(args.csv), args.jobs, args.seed)


def cmd_log(args) -> int:
    from host_tools import eventlog

    if args.port:
        print("error: reading the log over a serial port needs the console (not built yet); "
              "use --dir on a copy of the board's filesystem or a simulator state directory", file=sys.stderr)
        return 2
    return eventlog.main(args.dir, args.csv)


def cmd_powercut(args) -> int:
    import json
    import subprocess

    from host_tools.firmware import FIRMWARE, ROOT, micropython_binary

    r = subprocess.run([micropython_binary(), str(ROOT / "host_tools" / "mp" / "powercut.py"), str(FIRMWARE),
                        str(args.cuts), str(args.seed)], capture_output=True, text=True)
    if r.returncode:
        print(r.stdout + r.stderr, file=sys.stderr)
        return 1
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"littlefs on a NOR-flash model (4 KiB erase blocks, 192 KiB), power cut at a random program/erase operation")
    print(f"power cuts                      {out['cuts']} (over {out['rounds']} operations: {out['ops']['config']} config saves, "
          f"{out['ops']['state']} state saves, {out['ops']['log']} log appends)")
    bad = 0
    for k, label in (("unmountable", "unmountable filesystems"), ("config_mixed", "configs neither entirely old nor new"),
                     ("config_missing", "configs missing"), ("state_corrupt_accepted", "corrupted state records accepted"),
                     ("state_wrong", "state records neither old nor new"), ("log_corrupt_accepted", "corrupted log records accepted"),
                     ("log_lost_beyond_newest", "log records lost beyond the newest")):
        print(f"{label:<40}{out[k]}")
        bad += out[k]
    f = out["full"]
    print(f"full filesystem (errno {f['fill_errno']}): {f['appended']} of {f['tried']} appends stored, {f['dropped']} dropped; "
          f"oldest record {f['oldest_before']} -> {f['oldest_after']}, newest {f['newest_after']}")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bmsctl", description="Host tools for the MicroPython BMS")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sim", help="run a scenario against the firmware under the MicroPython unix port")
    p.add_argument("file", help="scenario file (TOML)")
    p.add_argument("--plot", help="write a PNG plot here")
    p.add_argument("--tick", help="override the scenario's tick (e.g. '100 ms')")
    p.add_argument("--kernels", choices=("viper", "ref"), default="viper",
                   help="firmware inner loops: viper kernels or their plain-Python twins")
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("bench", help="firmware speed and memory on the unix port, simulator speed")
    p.add_argument("--quick", action="store_true", help="fewer cell counts and a shorter simulation")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("campaign", help="fault injection x location x operating state, plus nominal runs")
    p.add_argument("--repeats", type=int, default=9, help="times the whole fault matrix runs (250 injections each)")
    p.add_argument("--nominal", type=int, default=50, help="runs with random healthy profiles and no fault")
    p.add_argument("--csv", default="out/campaign.csv", help="write every run here")
    p.add_argument("--jobs", type=int, default=None, help="parallel runs (default: the number of cores)")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_campaign)
    p = sub.add_parser("log", help="decode the firmware's event log to CSV")
    p.add_argument("--dir", help="a directory holding the firmware's files (log/*.seg)")
    p.add_argument("--port", help="a board's serial port (needs the console)")
    p.add_argument("--csv", help="write here instead of standard output")
    p.set_defaults(func=cmd_log)
    p = sub.add_parser("powercut", help="power cuts during config saves, state saves and log appends on littlefs")
    p.add_argument("--cuts", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_powercut)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
