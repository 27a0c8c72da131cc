"""`bmsctl bench`: speed and memory of the firmware on the MicroPython unix
port, and the simulator's real-time factor. Prints what it measured; no
figure here is asserted anywhere."""
from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from pathlib import Path

from host_tools import scenario
from host_tools.firmware import FIRMWARE, ROOT, micropython_binary
from host_tools.sim import FirmwareError, Simulation

HARNESS = ROOT / "host_tools" / "mp" / "tick_bench.py"
CELL_COUNTS = (16, 48, 96, 192, 256)


def _mp(cells, mode, kernels="viper"):
    r = subprocess.run([micropython_binary(), str(HARNESS), str(FIRMWARE), str(cells), mode, kernels],
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def compile_firmware(dest: Path, arch: str = "x64") -> Path:
    """bms/*.py -> .mpy for `arch`, as `bmsctl flash` builds it; main.py stays source."""
    from host_tools.flash import build
    build(arch, dest)
    return dest


def _runs_with_heap(sc, fw_dir, heap_bytes) -> bool:
    try:
        res = Simulation(sc, firmware_dir=fw_dir, mp_args=("-X", f"heapsize={heap_bytes}")).run()
    except FirmwareError:
        return False
    return res.step_ends and len(res.step_ends) == len(sc.profile) and not res.internal_error


def smallest_heap(sc, fw_dir, lo=4096, hi=256 * 1024, step=1024):
    if not _runs_with_heap(sc, fw_dir, hi):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if _runs_with_heap(sc, fw_dir, mid):
            hi = mid
        else:
            lo = mid
    return hi


def bus_time() -> list[dict]:
    """Bus and conversion time per tick of each front end on the chip models
    (host_tools/mp/bus_bench.py), printed as a table."""
    from host_tools.firmware import BOARD_CONFIGS
    r = subprocess.run([micropython_binary(), str(ROOT / "host_tools" / "mp" / "bus_bench.py"), str(FIRMWARE),
                        str(ROOT / "host_tools" / "mp"), str(BOARD_CONFIGS)], capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    print("Front-end bus and conversion time per 100 ms tick (chip models count transactions and bytes; the virtual clock")
    print("adds the driver's waits: conversions, wake-ups, polls, mux settling; wire time at the board file's bus clock;")
    print("direct ADC: 2 us per RP2040 ADC sample). Steady = median over 119 ticks after the first; the max includes")
    print("the LTC681x open-wire check (first scan, then every open_wire_every_ms); the first tick includes the")
    print("BQ76952's bring-up from its reset state.")
    print(f"{'front end':<62} {'cells':>5} {'bus':>8} {'bytes':>6} {'wire':>7} {'waits':>7} {'steady':>7} {'max':>7} {'first':>7}")
    print(f"{'':<62} {'':>5} {'(kHz)':>8} {'/tick':>6} {'(ms)':>7} {'(ms)':>7} {'(ms)':>7} {'(ms)':>7} {'(ms)':>7}")
    for x in rows:
        bus = f"{x['bus_hz'] // 1000}" if x["bus_hz"] else "ADC"
        print(f"{x['label']:<62} {x['cells']:>5} {bus:>8} {x['median_bytes']:>6} {x['median_bus_us'] / 1000:>7.2f} "
              f"{x['median_wait_us'] / 1000:>7.2f} {x['median_total_us'] / 1000:>7.2f} {x['max_total_us'] / 1000:>7.2f} "
              f"{x['first_us'] / 1000:>7.2f}")
    print()
    return rows


def can_bench(realtime_s: int = 10) -> dict:
    """The inverter CAN service between ticks (host_tools/mp/can_bench.py),
    printed next to the console's figures."""
    r = subprocess.run([micropython_binary(), str(ROOT / "host_tools" / "mp" / "can_bench.py"), str(FIRMWARE), str(realtime_s)],
                       capture_output=True, text=True, timeout=120 + realtime_s)
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)
    c = json.loads(r.stdout.strip().splitlines()[-1])
    print("Inverter CAN service between ticks (16 cells, unix port, median of 200 calls; MCP2515 driver on a stand-in chip")
    print("that answers its SPI transfers from a bytearray, so the Python chip model's work is not counted; the tick for scale)")
    print(f"  tick {c['tick_us']} us; the driver and the service (victron) hold {c['service_heap_bytes']} bytes of heap")
    for prof in ("pylontech", "victron"):
        x = c[prof]
        print(f"  {prof:<9} ({x['frames']} frames): service() with nothing due {x['idle_us']} us; a period start (error counters + "
              f"every frame built and queued) {x['period_us']} us; 8 frames read in a flood (RX_MAX, the most one call reads) "
              f"{x['flood_us']} us; a bus-off period {x['bus_off_us']} us; SPI {x['spi_bytes_per_s']} bytes/s on the chip model "
              f"({x['spi_bytes_per_s'] * 8 / 8e6 * 1e3:.2f} ms/s of wire at 8 MHz)")
    j = c["jitter"]
    if j["intervals_us_min"] is not None:
        print(f"  frame period (0x351, 1000 ms): board runner in real time on the unix port for {j['seconds']} s, "
              f"{j['frames_351']} frames, intervals {j['intervals_us_min'] / 1000:.3f} .. {j['intervals_us_max'] / 1000:.3f} ms, "
              f"{j['overruns']} tick overruns")
    print()
    return c
def mqtt_bench() -> dict | None:
    """The MQTT service between ticks against a real mosquitto on loopback
    (host_tools/mp/mqtt_bench.py), and the client's heap cost from source
    and from .mpy."""
    from host_tools.broker import INSTALL_HINT, Mosquitto, free_port, mosquitto_binary
    from host_tools.flash import build_lib
    from host_tools.mplib import MPLIB
    harness = str(ROOT / "host_tools" / "mp" / "mqtt_bench.py")
    if mosquitto_binary() is None:
        print("MQTT service: not measured (" + INSTALL_HINT + ")\n")
        return None
    with tempfile.TemporaryDirectory(prefix="bms-mqtt-") as tmp:
        build_lib("x64", Path(tmp) / "mpy")
        heap_mpy = json.loads(subprocess.run([micropython_binary(), harness, str(FIRMWARE), str(Path(tmp) / "mpy" / "lib"), "0"],
                                             capture_output=True, text=True, timeout=60, check=True).stdout)["client_heap_bytes"]
        broker = Mosquitto(Path(tmp) / "broker", {"bench": "bench-pw"}).start()
        try:
            r = subprocess.run([micropython_binary(), harness, str(FIRMWARE), str(MPLIB), str(broker.port), "bench",
                                "bench-pw", str(free_port())], capture_output=True, text=True, timeout=300)
        finally:
            broker.stop()
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)
    m = json.loads(r.stdout.strip().splitlines()[-1])
    print("MQTT service between ticks (16 cells, unix port, real mosquitto on loopback, median / max of 200 calls;")
    print("the console's figures above, the tick for scale)")
    print(f"  tick {m['tick_us']} us; service() with nothing due {m['idle_us']} us (max {m['idle_max_us']});")
    print(f"  publish cycle: state + faults {m['state_us']} us (max {m['state_max_us']}), cells the call after "
          f"{m['cells_us']} us (max {m['cells_max_us']}): {m['state_us'] + m['cells_us']} us in all;")
    print(f"  a command: reserve through Console.execute (validate, reconfigure, result) {m['cmd_reserve_us']} us; "
          f"invalid JSON refused {m['cmd_bad_json_us']} us;")
    print(f"  broker absent (connection refused, back-off): median {m['down_median_us']} us, max {m['down_max_us']} us "
          f"over {m['down_calls']} calls in 3 s;")
    print(f"  heap: client modules {m['client_heap_bytes']} bytes from source, {heap_mpy} bytes from .mpy (x64, 8-byte "
          f"pointers: less on a 32-bit board, not measured there); the service (client instance, buffers) {m['service_heap_bytes']} bytes")
    print(f"  ({m['published']} messages published, {m['dropped']} dropped by a full send queue)")
    print()
    return m


def main(quick: bool = False) -> int:
    counts = (16, 96) if quick else CELL_COUNTS
    bus_time()
    print("Firmware tick on the MicroPython unix port (x86_64; a board is slower: compare ratios, not microseconds)")
    print("full tick = SimHal read + measure .. contactor + SimHal write, frames replayed from memory, 1000 ticks after warm-up\n")
    print(f"{'cells':>5} {'viper median':>13} {'twins median':>13} {'twins/viper':>11} {'alloc B/tick':>12} {'alloc B/tick':>12} {'firmware heap':>13} {'peak heap':>10}")
    print(f"{'':>5} {'(us)':>13} {'(us)':>13} {'':>11} {'(viper)':>12} {'(twins)':>12} {'(bytes)':>13} {'(bytes)':>10}")
    for n in counts:
        v = _mp(n, "bench", "viper")
        r = _mp(n, "bench", "ref")
        print(f"{n:>5} {v['median_us']:>13} {r['median_us']:>13} {r['median_us'] / max(v['median_us'], 1):>11.1f} "
              f"{v['alloc_bytes_per_tick']:>12.1f} {r['alloc_bytes_per_tick']:>12.1f} {v['resident_heap_bytes']:>13} {v['peak_heap_bytes']:>10}")
    print("(firmware heap: bytes the config, HAL, state and stages hold after boot, module code not included;\n"
          " peak heap: the whole interpreter heap in use during the timed ticks, replay frames included)\n")
    k = _mp(96, "kernels")
    print("Kernels at 96 cells: mean time per call over 50 calls")
    print(f"{'kernel':>15} {'viper (us)':>11} {'twin (us)':>10} {'twin/viper':>10}")
    for name, d in k["kernels"].items():
        print(f"{name:>15} {d['viper_us']:>11.2f} {d['twin_us']:>10.2f} {d['ratio']:>10.1f}")
    print()
    sc = scenario.load(ROOT / "scenarios" / "bench_1h.toml")
    with tempfile.TemporaryDirectory(prefix="bms-mpy-") as tmp:
        fw = compile_firmware(Path(tmp))
        heap = smallest_heap(sc, fw)
    print("Smallest -X heapsize at which the firmware, loaded from .mpy (x64), runs the 1-hour 16-cell scenario "
          "(bisection, 1 KiB steps): " + (f"{heap} bytes ({heap / 1024:.0f} KiB)" if heap else "did not run even at 256 KiB"))
    print()
    c = json.loads(subprocess.run([micropython_binary(), str(ROOT / "host_tools" / "mp" / "console_bench.py"), str(FIRMWARE)],
                                  capture_output=True, text=True, timeout=120, check=True).stdout.strip().splitlines()[-1])
    print("Serial console between ticks (16 cells, unix port, median of 200 calls; the tick for scale, resting-pack model)")
    print(f"  tick {c['tick_us']} us; console service() with nothing waiting {c['idle_us']} us; one telemetry line "
          f"({c['telemetry_bytes']} bytes) {c['telemetry_us']} us;")
    print(f"  'status' {c['status_us']} us; 'cells' {c['cells_us']} us; a garbage line {c['bad_line_us']} us; "
          f"a 512-byte flood (the most one call takes) {c['flood_512_us']} us")
    print()
    can_bench()
    mqtt_bench()
    sim_speed(sc, quick)
    return 0


def sim_speed(sc, quick: bool = False) -> dict:
    """The simulator's real-time factor against issue 18's goal, and where
    its wall time goes: the host process and the firmware's, each in CPU
    time per tick (getrusage), beside the firmware's own tick measured now
    (tick_bench, frames from memory: its ceiling) and the bare transport."""
    from host_tools import fused
    print("Simulator real-time factor (simulated time / wall time: the firmware in the unix port in lock-step with the plant,")
    print("100 ms tick, both processes on one core; the routine ticks in the compiled loop, host_tools/fused_loop.c)")
    print(f"  goal (issue 18): >= {SIM_GOAL[16]}x at 16 cells, >= {SIM_GOAL[96]}x at 96 cells, on an otherwise idle machine")
    if not fused.built():
        print("  (host_tools._fused_loop is not built: every tick runs in Python; make setup builds it)")
    rt = transport_round_trip()
    print(f"  transport alone (a frame each way, no tick, one core): two pipes (the simulator's) {rt['pipes']:.1f} us, "
          f"AF_UNIX socketpair {rt['fd']:.1f} us, TCP loopback {rt['tcp']:.1f} us per round trip")
    out = {}
    for n in (16, 96):
        s = copy.deepcopy(sc)
        s.pack.cells = n
        s.pack.temps = max(4, n // 4)
        if quick:
            s.profile = s.profile[:1]
            s.profile[0].timeout_s = 600
        stages = _mp(n, "stages", "viper")["stages"]  # measured now, beside the run, for the ratios
        fw_us = sum(x["mean_us"] for x in stages.values())
        res, host_us, fw_cpu_us = cpu_split(s, fused=None)
        tick_us = res.wall_s / res.ticks * 1e6
        period_us = s.tick_s * 1e6
        goal = SIM_GOAL[n]
        f = res.fused or {"fused": 0, "finished": 0, "python": res.ticks}
        print(f"  {n:>3} cells: {res.sim_s / 3600:.2f} h simulated in {res.wall_s:.1f} s wall: {res.rtf:.0f}x real time "
              f"({res.rtf / goal:.2f} of the {goal}x goal: {'met' if res.rtf >= goal else 'not met'})")
        print(f"       ticks: {f['fused']} whole in C, {f['finished']} finished in Python after C's exchange, "
              f"{f['python']} whole in Python (of {res.ticks})")
        print(f"       {tick_us:.1f} us wall per tick: the host process {host_us:.1f} us of CPU, the firmware's "
              f"{fw_cpu_us:.1f} us (user + system, the pipes' system calls included)")
        print(f"       the firmware's own tick now (tick_bench, frame arrival + tick, mean): {fw_us:.1f} us, a ceiling of "
              f"{period_us / fw_us:.0f}x; with the bare round trip {period_us / (fw_us + rt['pipes']):.0f}x; "
              f"the simulator reaches {period_us / tick_us / (period_us / fw_us):.2f} of the firmware's ceiling")
        top = sorted(stages.items(), key=lambda kv: -kv[1]["mean_us"])[:5]
        print("       the firmware tick's largest parts: " + ", ".join(f"{k} {v['mean_us']:.1f} us" for k, v in top))
        py = copy.deepcopy(s)
        py.profile = py.profile[:1]
        py.profile[0].timeout_s = 300
        r_py, _, _ = cpu_split(py, fused=False)
        r_c, _, _ = cpu_split(copy.deepcopy(py), fused=None)
        print(f"       the same 5 min every tick in Python: {r_py.rtf:.0f}x; in the compiled loop: {r_c.rtf:.0f}x "
              f"({r_c.rtf / r_py.rtf:.1f} times as fast)")
        out[n] = {"rtf": res.rtf, "tick_us": tick_us, "host_us": host_us, "fw_cpu_us": fw_cpu_us, "fw_tick_us": fw_us,
                  "python_rtf": r_py.rtf, "fused_rtf": r_c.rtf}
    return out


def cpu_split(sc, fused: bool | None):
    """A Simulation run and the CPU time per tick of this process and of the
    firmware's (a child, waited for when the run ends)."""
    import resource
    s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    res = Simulation(sc, fused=fused).run()
    s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    per = 1e6 / res.ticks
    return (res, (s1.ru_utime - s0.ru_utime + s1.ru_stime - s0.ru_stime) * per,
            (c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime) * per)


SIM_GOAL = {16: 2000, 96: 1000}


def transport_round_trip(frames_n: int = 20000) -> dict:
    """Median-free mean round trip of a 76-byte frame out and a 152-byte
    frame back between this process and the unix port, both on one core
    (as Simulation.run pins them), over each transport."""
    import os
    import socket
    import time
    out = {}
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if saved is not None:
        os.sched_setaffinity(0, {min(saved)})
    try:
        for kind in ("pipes", "fd", "tcp"):
            if kind == "pipes":  # what the simulator uses (link.FirmwareLink)
                to_fw_r, to_fw_w = os.pipe()
                from_fw_r, from_fw_w = os.pipe()
                spec, keep = f"fd:{to_fw_r},{from_fw_w}", (to_fw_r, from_fw_w)
            elif kind == "fd":
                conn, fw_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                spec, keep = f"fd:{fw_end.fileno()}", (fw_end.fileno(),)
            else:
                srv = socket.socket()
                srv.bind(("127.0.0.1", 0))
                srv.listen(1)
                spec, keep = f"127.0.0.1:{srv.getsockname()[1]}", ()
            proc = subprocess.Popen([micropython_binary(), str(ROOT / "host_tools" / "mp" / "echo_bench.py"),
                                     str(FIRMWARE), spec, "76", "152"], pass_fds=keep)
            if kind == "pipes":
                os.close(to_fw_r)
                os.close(from_fw_w)
            elif kind == "fd":
                fw_end.close()
            else:
                srv.settimeout(20)
                conn, _ = srv.accept()
                srv.close()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tx, rx = bytes(76), bytearray(152)
            view = memoryview(rx)

            if kind == "pipes":
                def trip():
                    os.write(to_fw_w, tx)
                    got = 0
                    while got < 152:
                        got += os.readv(from_fw_r, (view[got:],))
            else:
                def trip():
                    conn.sendall(tx)
                    got = 0
                    while got < 152:
                        got += conn.recv_into(view[got:])
            for _ in range(500):
                trip()
            t0 = time.perf_counter()
            for _ in range(frames_n):
                trip()
            out[kind] = (time.perf_counter() - t0) / frames_n * 1e6
            if kind == "pipes":
                os.close(to_fw_w)
                os.close(from_fw_r)
            else:
                conn.close()
            proc.wait(timeout=10)
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)
    return out
