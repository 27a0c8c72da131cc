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
    from host_tools.boardcfg import BoardConfigError
    try:
        if args.can_frames and not args.can:
            raise scenario.ScenarioError("--can-frames needs --can PROFILE")
        res = run(sc, kernels=args.kernels, afe=args.afe, decisions=bool(args.record or args.decisions),
                  can=args.can, can_frames=args.can_frames)
    except (FirmwareError, BoardConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(report.summary(res))
    if args.record or args.decisions:
        from host_tools import replay
        for path, write in ((args.record, replay.write_sim_record), (args.decisions, replay.write_decisions)):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                write(res, path)
                print(f"{'record' if write is replay.write_sim_record else 'decisions':<15} {Path(path).resolve()}")
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


def _pairs(items, what):
    out = {}
    for item in items or ():
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise ValueError(f"{what} {item!r}: KEY=VALUE expected")
        out[k.strip()] = v.strip()
    return out


def cmd_replay(args) -> int:
    from host_tools import replay, report, trace
    from host_tools.link import FirmwareError

    try:
        cfg, sc = replay.load_config(args.config, args.scenario)
        if args.tick:
            from host_tools import units
            try:
                cfg["tick_ms"] = int(round(units.parse(args.tick, "time") * 1000))
            except units.QuantityError as e:
                raise ValueError(f"--tick: {e}") from None
        columns, unit_map, sign = {}, {}, args.current_sign
        if args.map:
            columns, unit_map, sign_file = trace.load_mapping(args.map)
            sign = sign or sign_file
        columns.update(_pairs(args.column, "--column"))
        unit_map.update(_pairs(args.unit, "--unit"))
        tr = trace.load(args.file, cfg["cells"], cfg["temps"], columns, unit_map, sign, args.format,
                        single_cell=args.single_cell)
        if args.single_cell:
            # at the configuration's tick: the expansion's noise is the front end's, per scan
            tr = trace.interpolate(tr, cfg.get("tick_ms", 100) / 1000, args.max_gap)
            tr = trace.expand(tr, cfg["cells"], args.spread_mv, args.r_spread_mohm, args.noise_mv, args.temp_noise_k, args.seed)
        elif not args.tick:
            cfg["tick_ms"] = trace.replay_tick_ms(tr, cfg.get("tick_ms", 100))
        ticks = trace.resample(tr, cfg["tick_ms"] / 1000, args.max_gap)
    except (replay.ReplayError, trace.TraceError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        res = replay.replay(cfg, tr, ticks, args.kernels, sc)
    except FirmwareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(report.summary(res))
    if args.decisions:
        Path(args.decisions).parent.mkdir(parents=True, exist_ok=True)
        replay.write_decisions(res, args.decisions)
        print(f"decisions       {Path(args.decisions).resolve()}")
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        report.plot(res, args.plot)
        print(f"plot            {Path(args.plot).resolve()}")
    verdicts = report.check(res)
    for v in verdicts:
        print(f"  [{'PASS' if v.ok else 'FAIL'}] #{v.index} {v.text}: {v.detail}")
    return 1 if any(not v.ok for v in verdicts) else 0


def cmd_bench(args) -> int:
    from host_tools import bench

    return bench.main(quick=args.quick)


def cmd_campaign(args) -> int:
    from host_tools import campaign

    return campaign.main(args.repeats, args.nominal, Path(args.csv), args.jobs, args.seed,
                         args.estimate, args.intermittent, args.envelope, args.scheduler)


def cmd_fleet(args) -> int:
    from host_tools import fleet

    try:
        fl = fleet.load(args.file) if args.file else fleet.Fleet()
        over = {k: v for k, v in (("packs", args.packs), ("hours", args.hours), ("seed", args.seed),
                                  ("tick_s", args.tick)) if v is not None}
        if over:
            # the command line's values pass the same checks as the file's
            fl = fleet.parse({"fleet": {**{k: getattr(fl, k) for k in fleet._FLEET_KEYS}, **over},
                              "event": [vars(e) for e in fl.events]}, "command line")
    except fleet.FleetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return fleet.main(fl, Path(args.out), args.jobs, args.scheduler)


def cmd_log(args) -> int:
    from host_tools import eventlog

    if bool(args.port) == bool(args.dir):
        print("error: give exactly one of --port (a running board) or --dir (a copy of its files)", file=sys.stderr)
        return 2
    if args.port:
        return eventlog.main_port(args.port, args.csv, args.last, key=_key(args))
    return eventlog.main(args.dir, args.csv)


def cmd_config(args) -> int:
    from host_tools.auth import KeyError_
    from host_tools.eventlog import console_command
    try:
        lines = console_command(args.port, "config " + " ".join(args.words), key=_key(args))
    except (RuntimeError, OSError, KeyError_) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _key(args):
    """The pack key from --key-file, $BMS_KEY_FILE or $BMS_KEY; None if none."""
    from host_tools.auth import load_key
    return load_key(getattr(args, "key_file", None))


def cmd_keygen(args) -> int:
    from host_tools.auth import KeyError_, keygen
    try:
        keygen(Path(args.out))
    except (KeyError_, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"key written to {args.out} (mode 600): keep a copy offline; a lost key means reflashing through "
          "BOOTSEL / download mode, which wipes the board (README: Before you install)")
    return 0


def cmd_key(args) -> int:
    import serial

    from host_tools.auth import KeyError_, command, load_key, open_session, rotate_args
    try:
        old = _key(args)
        new = load_key(args.new_key_file)
    except KeyError_ as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if old is None:
        print("error: the board's current key is needed (--key-file, BMS_KEY_FILE or BMS_KEY)", file=sys.stderr)
        return 2
    try:
        with serial.Serial(args.port, 115200, timeout=0.2) as s:
            nonce = open_session(s, old)
            print("\n".join(command(s, rotate_args(old, new, nonce))))
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_board(args) -> int:
    import json
    import tempfile
    import time

    from host_tools import scenario
    from host_tools.firmware import BOARD_CONFIGS
    from host_tools.flash import FlashError, flash
    from host_tools.sim import firmware_config
    from host_tools.vboard import VirtualBoard

    try:
        sc = scenario.load(args.scenario)
    except scenario.ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fs = Path(args.fs) if args.fs else Path(tempfile.mkdtemp(prefix="bms-board-"))
    with VirtualBoard(fs, sc, speed=args.speed, link=args.link, can=args.can, can_frames=args.can_frames) as vb:
        print(f"virtual board on {vb.path}" + (f" (also {args.link})" if args.link else ""), flush=True)
        if args.can:
            print(f"  inverter CAN ({args.can}) frames in {vb.can_frames}: bmsctl can --port {vb.can_frames}", flush=True)
        print(f"  filesystem {fs}; plant: {sc.description}", flush=True)
        if args.flash:
            cfg_path = fs.parent / (fs.name + "-config.json")
            cfg_path.write_text(json.dumps(firmware_config(sc), indent=1))
            board_path = BOARD_CONFIGS / "sim.json"
            if args.mode == "production":
                bc = json.loads(board_path.read_text())
                bc["mode"] = "production"
                board_path = fs.parent / (fs.name + "-board.json")
                board_path.write_text(json.dumps(bc, indent=1))
            try:
                flash(board_path, cfg_path, vb.path, key=_key(args))
            except FlashError as e:
                print(f"error: {e}", file=sys.stderr)
                return 3
        elif not (fs / "main.py").exists():
            print(f"  no firmware yet: bmsctl flash --board sim --config CONFIG --port {vb.path}", flush=True)
        print(f"  watch it:  bmsctl monitor --port {vb.path}", flush=True)
        print(f"  REPL:      mpremote connect {vb.path} repl", flush=True)
        try:
            while args.duration is None or time.monotonic() < vb.started + args.duration:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_flash(args) -> int:
    from host_tools.firmware import BOARD_CONFIGS
    from host_tools.flash import FlashError, flash

    board = Path(args.board)
    if not board.suffix:
        board = BOARD_CONFIGS / f"{args.board}.json"
    from host_tools.auth import KeyError_
    try:
        flash(board, Path(args.config), args.port, key=_key(args))
    except (FlashError, KeyError_) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_monitor(args) -> int:
    from host_tools import monitor

    from host_tools.auth import KeyError_
    try:
        key = _key(args)
    except KeyError_ as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return monitor.main(args.port, args.csv, args.send, args.duration, args.screenshot, key=key)


def cmd_gateway(args) -> int:
    from host_tools import gateway
    over = {"vtn": args.vtn, "ven_name": args.ven_name, "port": args.port, "key_file": args.key_file,
            "ven_id": args.ven_id, "report_s": args.report_s, "min_share": args.min_share,
            "simple_w": [int(x) for x in args.simple_w.split(",")] if args.simple_w and all(
                x.strip().isdigit() for x in args.simple_w.split(",")) else args.simple_w,
            "vtn_fingerprint": args.vtn_fingerprint}
    try:
        s = gateway.load_settings(args.settings, over) if args.settings else gateway.make_settings(over, "command line")
    except gateway.SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return gateway.main(s)


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


def cmd_can(args) -> int:
    from host_tools import canmon
    try:
        return canmon.run(args.port, args.log, args.duration, not args.no_follow)
    except canmon.CanPortError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bmsctl", description="Host tools for the MicroPython BMS")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sim", help="run a scenario against the firmware under the MicroPython unix port")
    p.add_argument("file", help="scenario file (TOML)")
    p.add_argument("--plot", help="write a PNG plot here")
    p.add_argument("--tick", help="override the scenario's tick (e.g. '100 ms')")
    p.add_argument("--kernels", choices=("viper", "ref"), default="viper",
                   help="firmware inner loops: viper kernels or their plain-Python twins")
    p.add_argument("--can", choices=("pylontech", "victron", "sma_lv"), default=None,
                   help="closed loop over the inverter CAN: the plant's inverter/charger take their limits from this "
                        "profile's frames, decoded off the MCP2515 model with the project's DBC (stop 3 s after the last 0x351)")
    p.add_argument("--can-frames", help="with --can: keep the bus's frames in this file (bmsctl can --port FILE shows them live)")
    p.add_argument("--afe", choices=("bq76952", "ltc6813", "adc"),
                   help="read the plant through this front end's chip model and the board HAL's real driver "
                        "(wiring from board_configs/, resized to the scenario's pack) instead of the sim HAL")
    p.add_argument("--record", help="write what the firmware was given per tick here (a generic CSV bmsctl replay reads)")
    p.add_argument("--decisions", help="write the firmware's decisions per tick here (CSV)")
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("replay", help="recorded pack data through the unmodified firmware: what would it have decided?")
    p.add_argument("file", help="the record: a monitor CSV (bmsctl monitor --csv) or a generic CSV (host_tools/trace.py)")
    p.add_argument("--config", help="the firmware's pack configuration (JSON, as flashed)")
    p.add_argument("--scenario", help="or a scenario whose [pack]/[firmware] make the configuration")
    p.add_argument("--format", choices=("monitor", "generic"), help="default: detected from the header")
    p.add_argument("--map", help="a TOML mapping file: [columns] KEY = \"name\", [units] KEY = \"unit\", current_sign")
    p.add_argument("--column", action="append", help="KEY=NAME (time, current, cell, temp, cool_in, cool_out, flow, soc, pack, bus, charger); "
                                                     "cell/temp take a pattern with {i} or one name for all")
    p.add_argument("--unit", action="append", help="KEY=UNIT, e.g. cell=mV, current=mA, time=ms, temp=K, soc=fraction")
    p.add_argument("--current-sign", choices=("charge_positive", "discharge_positive"))
    p.add_argument("--single-cell", action="store_true", help="one cell's data, expanded to the configuration's pack")
    p.add_argument("--spread-mv", type=float, default=2.0, help="single cell: per-cell voltage offset, standard deviation")
    p.add_argument("--r-spread-mohm", type=float, default=0.1, help="single cell: per-cell resistance spread, standard deviation")
    p.add_argument("--noise-mv", type=float, default=1.0, help="single cell: cell voltage noise per sample, standard deviation")
    p.add_argument("--temp-noise-k", type=float, default=0.1, help="single cell: thermistor noise, standard deviation")
    p.add_argument("--seed", type=int, default=1, help="single cell: the generator's seed")
    p.add_argument("--max-gap", type=float, help="s; an older sample is a gap (default: 2 x the median sample period)")
    p.add_argument("--tick", help="override the configuration's tick (e.g. '100 ms')")
    p.add_argument("--decisions", help="write the firmware's decisions per tick here (CSV)")
    p.add_argument("--plot", help="write a PNG plot here")
    p.add_argument("--kernels", choices=("viper", "ref"), default="viper")
    p.set_defaults(func=cmd_replay)
    p = sub.add_parser("bench", help="firmware speed and memory on the unix port, simulator speed")
    p.add_argument("--quick", action="store_true", help="fewer cell counts and a shorter simulation")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("campaign", help="fault injection x location x operating state, plus nominal runs")
    p.add_argument("--repeats", type=int, default=9, help="times the whole fault matrix runs (250 injections each)")
    p.add_argument("--nominal", type=int, default=50, help="runs with random healthy profiles and no fault")
    p.add_argument("--csv", default="out/campaign.csv", help="write every run here")
    p.add_argument("--jobs", type=int, default=None, help="workers of the local Dask cluster (default: the number of cores)")
    p.add_argument("--scheduler", help="a running Dask scheduler (tcp://HOST:8786) instead of a local cluster")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--estimate", type=int, default=0, help="estimate-error runs (wrong saved SOC/capacity, current sensor error, grid event)")
    p.add_argument("--intermittent", type=int, default=0, help="times the intermittent-fault matrix runs (179 injections each)")
    p.add_argument("--envelope", type=int, default=0, help="nominal runs over ticks, ambients, chemistries and profiles")
    p.set_defaults(func=cmd_campaign)
    p = sub.add_parser("fleet", help="a virtual power plant: N household packs and an aggregator's grid events, on Dask")
    p.add_argument("file", nargs="?", help="a fleet file (TOML: [fleet] and [[event]]); default: a seeded fleet")
    p.add_argument("--packs", type=int, help="number of packs")
    p.add_argument("--hours", type=float, help="simulated hours")
    p.add_argument("--seed", type=int)
    p.add_argument("--tick", type=float, help="tick in s (default 1)")
    p.add_argument("--out", default="out/fleet", help="CSV files and the plot go here")
    p.add_argument("--jobs", type=int, default=None, help="workers of the local Dask cluster (default: the number of cores)")
    p.add_argument("--scheduler", help="a running Dask scheduler (tcp://HOST:8786) instead of a local cluster")
    p.set_defaults(func=cmd_fleet)
    p = sub.add_parser("log", help="decode the firmware's event log to CSV")
    p.add_argument("--dir", help="a directory holding the firmware's files (log/*.seg)")
    p.add_argument("--port", help="a running board's serial port (read through the console's log command)")
    p.add_argument("--last", type=int, help="only the newest N records (with --port)")
    p.add_argument("--csv", help="write here instead of standard output")
    p.add_argument("--key-file", help="a production board's key (the log is readable without one)")
    p.set_defaults(func=cmd_log)
    p = sub.add_parser("config", help="a running board's settings: get [KEY] | set KEY VALUE (production: --key-file)")
    p.add_argument("words", nargs="+", help="get [KEY] or set KEY VALUE")
    p.add_argument("--port", required=True)
    p.add_argument("--key-file", help="a production board's key (or BMS_KEY_FILE / BMS_KEY)")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("board", help="run the virtual board (firmware on the unix port, real-time plant) behind a pty")
    p.add_argument("--scenario", default="scenarios/board.toml", help="the plant: pack and a repeating profile")
    p.add_argument("--fs", help="the board's filesystem directory (kept; default: a new temporary one)")
    p.add_argument("--flash", action="store_true", help="flash the firmware (sim board, the scenario's pack) at start")
    p.add_argument("--speed", type=float, default=1.0, help="plant clock speed (1 = real time)")
    p.add_argument("--link", help="also make the port available under this path (a symlink, like /dev/serial/by-id)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--can", choices=("pylontech", "victron", "sma_lv"),
                   help="the firmware's inverter CAN on an MCP2515 model (frames in --can-frames, for bmsctl can --port)")
    p.add_argument("--can-frames", help="with --can: the frames file (default: can-frames.txt in the filesystem directory)")
    p.add_argument("--mode", choices=("bench", "production"), default="bench",
                   help="with --flash: the board config's mode (production needs --key-file)")
    p.add_argument("--key-file", help="with --flash --mode production: the pack key")
    p.set_defaults(func=cmd_board)
    p = sub.add_parser("flash", help="compile, copy, verify and start the firmware on a board")
    p.add_argument("--board", required=True, help="a board config name in board_configs/ (e.g. pico_bq76952) or a path")
    p.add_argument("--config", required=True, help="the pack configuration (JSON), validated before anything is copied")
    p.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyACM0)")
    p.add_argument("--key-file", help="the pack key (bmsctl keygen); needed for a production board (or BMS_KEY_FILE)")
    p.set_defaults(func=cmd_flash)
    p = sub.add_parser("keygen", help="make a pack key (32 random bytes) for production mode")
    p.add_argument("--out", required=True, help="the key file to create (never overwritten)")
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser("key", help="rotate a production board's key with the old one")
    p.add_argument("action", choices=("rotate",))
    p.add_argument("--port", required=True)
    p.add_argument("--key-file", help="the current key (or BMS_KEY_FILE / BMS_KEY)")
    p.add_argument("--new-key-file", required=True, help="the new key (bmsctl keygen)")
    p.set_defaults(func=cmd_key)
    p = sub.add_parser("monitor", help="live view of a board's telemetry; type commands; log to CSV")
    p.add_argument("--port", required=True)
    p.add_argument("--csv", help="append every telemetry line here")
    p.add_argument("--send", action="append", help="a console command to send at start (repeatable)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--screenshot", help="write the last view as text here at exit")
    p.add_argument("--key-file", help="a production board's key: commands run in a session (or BMS_KEY_FILE)")
    p.set_defaults(func=cmd_monitor)
    p = sub.add_parser("can", help="the firmware's inverter CAN frames, decoded live with the project's DBC")
    p.add_argument("--port", required=True, help="a frames file from `bmsctl sim --can P --can-frames FILE`, or a "
                                                 "python-can INTERFACE:CHANNEL (socketcan:can0, slcan:/dev/ttyACM0)")
    p.add_argument("--log", help="also write every frame here: candump -L format (python-can, SavvyCAN), .asc for Vector ASC")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--no-follow", action="store_true", help="a frames file: stop at its end instead of waiting for more")
    p.set_defaults(func=cmd_can)
    p = sub.add_parser("gateway", help="an OpenADR 2.0b VEN: a utility's grid events to one pack, delivery reported")
    p.add_argument("--settings", help="a TOML file with a [gateway] table (the options below; these win over it)")
    p.add_argument("--vtn", help="the VTN's URL, e.g. https://vtn.example/OpenADR2/Simple/2.0b")
    p.add_argument("--ven-name", help="this VEN's name, as enrolled with the VTN")
    p.add_argument("--ven-id", help="this VEN's venID, if the VTN assigned one already")
    p.add_argument("--port", help="the pack's serial console (e.g. /dev/ttyACM0, or the virtual board's pty)")
    p.add_argument("--key-file", help="a production pack's key (or BMS_KEY_FILE / BMS_KEY)")
    p.add_argument("--report-s", type=int, help="report sampling interval in s (default 10)")
    p.add_argument("--min-share", type=float, help="opt out below this share of the power asked (default 0.5)")
    p.add_argument("--simple-w", help="SIMPLE levels 1,2,3 as export powers in W (default 1000,2000,3000)")
    p.add_argument("--vtn-fingerprint", help="verify the VTN's XML signatures against this certificate fingerprint")
    p.set_defaults(func=cmd_gateway)
    p = sub.add_parser("powercut", help="power cuts during config saves, state saves and log appends on littlefs")
    p.add_argument("--cuts", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_powercut)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
