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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bmsctl", description="Host tools for the MicroPython BMS")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sim", help="run a scenario against the firmware under the MicroPython unix port")
    p.add_argument("file", help="scenario file (TOML)")
    p.add_argument("--plot", help="write a PNG plot here")
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
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
