"""Differential proof on 32 bits: run a scenario against the plant on the
unix port and record, tick by tick, the sensor frame the firmware received
and the actuator frame it answered; then feed the same sensor frames from
a file to the unmodified firmware on the 32-bit MicroPython (its
plain-Python kernel twins: the port has no viper) and require the same
actuator frames, byte for byte. A difference names the tick, the field and
both values."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from host_tools import frames
from host_tools.firmware import FIRMWARE
from host_tools.mp32 import node
from host_tools.scenario import load as load_scenario
from host_tools.sim import Simulation, firmware_capacity_mah, write_state_record

HERE = Path(__file__).resolve().parent

# (name, offset, struct code) of every field of the actuator frame
_HEAD = ("magic", "version", "flags", "seq", "outputs", "contactor_state", "pump_duty_pm", "heater",
         "balance_count", "ccl_ma", "dcl_ma", "soc_cpct", "pad", "faults", "new_events", "pad1", "pad2")
_GRID = ("grid_ma", "grid_mwh_event", "capacity_mah", "grid_active", "grid_reason", "soc_sync", "pad3")


def fields(data: bytes) -> dict:
    """The actuator frame's fields by name (events and balance bits whole)."""
    out = dict(zip(_HEAD, frames.ACT_HEAD.unpack_from(data)))
    out["faults"] = out["faults"].hex()
    for j in range(frames.EV_SLOTS):
        out[f"event[{j}]"] = frames.EVENT.unpack_from(data, frames.EV_OFF + 4 + 12 * j)
    out.update(zip(_GRID, frames.GRID.unpack_from(data, frames.GRID_OFF)))
    out["balance"] = data[frames.ACT_FIXED:].hex()
    return out


def first_difference(want: list[bytes], got: list[bytes]) -> str | None:
    """None when identical; else 'tick K: field F: unix port X, 32-bit Y'."""
    for k, (a, b) in enumerate(zip(want, got)):
        if a != b:
            fa, fb = fields(a), fields(b)
            for name in fa:
                if fa[name] != fb[name]:
                    return f"tick {k}: field {name}: unix port {fa[name]!r}, 32-bit {fb[name]!r}"
            return f"tick {k}: frames differ in length ({len(a)} vs {len(b)})"
    if len(want) != len(got):
        return f"tick {min(len(want), len(got))}: unix port answered {len(want)} frames, 32-bit {len(got)}"
    return None


class _Enough(Exception):
    pass


class _Recorder(list):
    """The frames of the first max_ticks ticks (all with None); then it
    ends the run (make test replays the start of the long scenarios)."""

    def __init__(self, max_ticks):
        super().__init__()
        self.max_ticks = max_ticks

    def append(self, item):
        super().append(item)
        if self.max_ticks is not None and len(self) >= self.max_ticks:
            raise _Enough


def record(scenario: Path, state_dir: Path | None = None, max_ticks: int | None = None):
    """(firmware config, [(sensor, actuator)]) of one unix-port run."""
    return record_sc(load_scenario(scenario), state_dir, max_ticks)


def record_sc(sc, state_dir: Path | None = None, max_ticks: int | None = None):
    """record() of a loaded scenario."""
    sim = Simulation(sc, kernels="viper", state_dir=state_dir)
    sim.recorder = _Recorder(max_ticks)
    try:
        sim.run()
    except _Enough:
        pass
    return sim.config, list(sim.recorder)


def replay(scenario: Path, max_ticks: int | None = None, heap: int = 1 << 20, timeout: float = 1800) -> dict:
    """Records SCENARIO (its first max_ticks ticks) on the unix port,
    replays it on 32 bits; returns
    {"ticks", "difference" (None when identical), "bytes"}."""
    sc = load_scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="bms32-") as tmp:
        tmp = Path(tmp)
        work = tmp / "rp"
        work.mkdir()
        state_args = ()
        unix_state = None
        if sc.firmware_soc is not None:
            # both runs boot from the same state record
            unix_state = tmp / "state_unix"
            unix_state.mkdir()
            (work / "state").mkdir()
            write_state_record(work / "state", int(round(sc.firmware_soc * 10000)),
                               firmware_capacity_mah(sc) if sc.estimate.capacity_error else 0)
            state_args = ("/rp/state",)
        config, rec = record(scenario, unix_state, max_ticks)
        (work / "config.json").write_text(json.dumps(config))
        (work / "rx.bin").write_bytes(b"".join(s for s, _ in rec))
        out = tmp / "tx.bin"
        node.run(HERE / "replay_fw.py", ("/rp/config.json", "/rp/rx.bin", "/rp/tx.bin", "ref", *state_args),
                 puts=((FIRMWARE, "/fw"), (work, "/rp")), gets=(("/rp/tx.bin", out),), heap=heap, timeout=timeout)
        got_all = out.read_bytes()
        size = len(rec[0][1]) if rec else 1
        got = [got_all[i:i + size] for i in range(0, len(got_all), size)]
        want = [a for _, a in rec]
        return {"ticks": len(rec), "difference": first_difference(want, got), "bytes": len(got_all)}


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenarios", nargs="+", type=Path)
    ap.add_argument("--max-ticks", type=int, default=None, help="replay only the first N ticks")
    a = ap.parse_args(argv)
    bad = 0
    for s in a.scenarios:
        r = replay(s, a.max_ticks)
        print(f"{s.name}: {r['ticks']} ticks, " + ("actuator frames byte-identical on 32 bits"
                                                    if r["difference"] is None else "DIFFERENT: " + r["difference"]))
        bad += r["difference"] is not None
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
