"""Software in the loop: the unmodified firmware under the MicroPython unix
port, in lock-step with the plant over a local TCP socket.

Each tick the host sends one sensor frame (what the front end would measure
now), the firmware runs app.tick() and answers with one actuator frame
(contactors, balancing, pump, current limits, fault bits); the host applies
it for the next tick. Time is the host's, so runs are reproducible and run
as fast as both sides can compute.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from host_tools.firmware import BOARD_CONFIGS, FIRMWARE
from host_tools.link import FirmwareError, FirmwareLink
from host_tools.loop import run_loop
from host_tools.pack_plant import PackPlant
from host_tools.record import Result
from host_tools.scenario import Scenario


def firmware_config(sc: Scenario, board: str = "sim") -> dict:
    """The firmware's configuration: the board's JSON plus the scenario's pack."""
    board_cfg = json.loads((BOARD_CONFIGS / f"{board}.json").read_text())
    # Only what the firmware's configuration knows; pins, buses and the MCU
    # stay in the board config (board.json on a board).
    cfg = {k: board_cfg[k] for k in ("board", "hal") if k in board_cfg}
    cfg.update({
        "name": sc.name,
        "chemistry": sc.pack.chemistry,
        "cells": sc.pack.cells,
        "temps": sc.pack.temps,
        "capacity_mah": firmware_capacity_mah(sc),
        "tick_ms": int(round(sc.tick_s * 1000)),
    })
    cfg.update(sc.firmware)
    return cfg


def firmware_capacity_mah(sc: Scenario) -> int:
    """The capacity the firmware believes: the pack's, off by the
    scenario's estimate error."""
    return int(round(sc.pack.capacity_ah * 1000 * (1 + sc.estimate.capacity_error)))


def least_pinned_cpu(cpus: list[int]) -> int:
    """Of `cpus`, the core the fewest processes are pinned to alone (from
    /proc/PID/status Cpus_allowed_list); ties: the lowest."""
    pinned = dict.fromkeys(cpus, 0)
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return cpus[0]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        v = line.split(":", 1)[1].strip()
                        if v.isdigit() and int(v) in pinned:
                            pinned[int(v)] += 1
                        break
        except OSError:  # gone meanwhile
            continue
    return min(cpus, key=lambda c: (pinned[c], c))


class Simulation:
    def __init__(self, sc: Scenario, kernels: str = "viper", plot_every_s: float | None = None,
                 firmware_dir: Path | None = None, mp_args=(), stop_on_fault: str | None = None,
                 linger_s: float = 1.0, cpu: int | None = None, state_dir: Path | None = None,
                 afe: str | None = None, decisions: bool = False, can: str | None = None,
                 can_cut_at_s: float | None = None, can_frames: Path | None = None, fused: bool | None = None):
        """stop_on_fault: end the run `linger_s` after this fault is first
        raised (campaigns). cpu: the core for the lock-step pair (default:
        the core the fewest processes are pinned to). fused: the routine
        ticks in the compiled loop (host_tools/fused.py; None: where it can
        run them, False: every tick in Python)."""
        self.fused = fused
        self.stop_on_fault = stop_on_fault
        self.linger_s = linger_s
        self.cpu = cpu
        self.state_dir = state_dir  # the firmware's persistent files (survive between runs)
        self.afe = afe  # None: sim HAL; "bq76952", "ltc6813", "adc": through that chip model
        self.sc = sc
        self.kernels = kernels
        self.plot_every_s = plot_every_s
        self.firmware_dir = Path(firmware_dir or FIRMWARE)
        self.mp_args = tuple(mp_args)
        self.decisions = decisions  # keep the firmware's decisions per tick (res.decisions)
        # can: the inverter takes its limits from this CAN profile's frames
        # (host_tools/inverter.py), cut off from them at can_cut_at_s
        self.can = can
        self.can_cut_at_s = can_cut_at_s
        self.can_frames = can_frames  # keep the frames file here (default: a temporary one)
        self.inverter = None
        self.recorder = None  # a list: every tick's (sensor, actuator) frames (host_tools/mp32/replay.py)

    def run(self) -> Result:
        # Lock-step ping-pong is fastest with both processes on one core: a
        # wake-up on the same core skips the cross-core interrupt (measured
        # here: ~710x instead of ~410x real time for 16 cells). A run given
        # no core (a Dask worker gives its index) takes the one the fewest
        # other processes are pinned to, so independent runs (a soak beside
        # a fleet) do not share one core while another idles.
        saved = None
        if hasattr(os, "sched_setaffinity"):
            saved = os.sched_getaffinity(0)
            cpus = sorted(saved)
            cpu = cpus[self.cpu % len(cpus)] if self.cpu is not None else least_pinned_cpu(cpus)
            os.sched_setaffinity(0, {cpu})
        try:
            return self._run()
        finally:
            if saved is not None:
                os.sched_setaffinity(0, saved)

    def _run(self) -> Result:
        sc = self.sc
        self.config = firmware_config(sc)
        reset = "wdt" if any(f.kind == "watchdog_reset" for f in sc.faults) else "power"
        tmp = None
        state_dir = self.state_dir
        if sc.firmware_soc is not None:
            if state_dir is None:
                import tempfile
                tmp = tempfile.TemporaryDirectory(prefix="bmsstate-")
                state_dir = Path(tmp.name)
            # a capacity error is a learned capacity in the record, too
            write_state_record(Path(state_dir), int(round(sc.firmware_soc * 10000)),
                               firmware_capacity_mah(sc) if sc.estimate.capacity_error else 0)
        extra = ()
        can_tmp = None
        if self.can:
            import tempfile
            from host_tools.firmware import ROOT
            from host_tools.inverter import CanInverter
            can_tmp = tempfile.TemporaryDirectory(prefix="bmscan-")
            frames_path = Path(self.can_frames) if self.can_frames else Path(can_tmp.name) / "frames.txt"
            frames_path.parent.mkdir(parents=True, exist_ok=True)
            extra = ("--can", self.can, "--can-out", str(frames_path), "--chips", str(ROOT / "host_tools" / "mp"))
            self.inverter = CanInverter(frames_path, cut_at_s=self.can_cut_at_s)
        try:
            with FirmwareLink(self.config, self.kernels, self.firmware_dir, self.mp_args, reset, state_dir,
                              self.afe, extra) as link:
                link.recorder = self.recorder
                result = self._loop(link)
        finally:
            if tmp is not None:
                tmp.cleanup()
            if can_tmp is not None:
                can_tmp.cleanup()
        result.firmware_log = link.log
        return result

    def _loop(self, link: FirmwareLink) -> Result:
        sc = self.sc
        res = Result(sc, link.hello)
        res.firmware_config = self.config
        decim = max(1, int(round((self.plot_every_s or max(1.0, sc.duration_limit_s / 4000)) / sc.tick_s)))
        plant = PackPlant(sc, res, decim, self.inverter)
        return run_loop(link, plant, res, self.stop_on_fault, self.linger_s, self.decisions, self.fused)


def write_state_record(state_dir: Path, soc_cpct: int, capacity_mah: int = 0) -> None:
    """A state record (firmware/bms/persist/state_record.py, version 2) that
    makes the firmware boot believing the pack is at soc_cpct (and, when
    given, has capacity_mah)."""
    import struct
    import zlib
    state_dir.mkdir(parents=True, exist_ok=True)
    body = struct.pack("<IIiiiii8sI", 0x32535452, 1, soc_cpct, capacity_mah, 0, 0, 0, bytes(8), 0)
    (state_dir / "state.b").write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def run(sc: Scenario, kernels: str = "viper", afe: str | None = None, decisions: bool = False,
        can: str | None = None, can_frames: Path | None = None) -> Result:
    """Runs a scenario; a pump_saving expectation adds the always-on run.
    can: the plant's inverter takes its limits from that CAN profile's frames."""
    res = Simulation(sc, kernels, afe=afe, decisions=decisions, can=can, can_frames=can_frames).run()
    if any(e.kind == "pump_saving" for e in sc.expects):
        import copy
        ao = copy.deepcopy(sc)
        ao.firmware["pump_force_pm"] = 1000
        res.always_on = Simulation(ao, kernels, afe=afe, can=can).run()
    return res
