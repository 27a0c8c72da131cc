"""A latched fault survives a reset: the state record brings it back at boot,
before the contactors may close, and the event log keeps the history."""
import struct

from host_tools import frames, scenario
from host_tools.sim import Simulation

from conftest import SCENARIOS


def test_latched_fault_survives_a_reboot(tmp_path):
    first = Simulation(scenario.load(SCENARIOS / "charger_no_stop.toml"), state_dir=tmp_path).run()
    assert "CELL_OV_CRIT" in [n for _t, n in first.faults_raised()]
    assert (tmp_path / "state.a").exists() or (tmp_path / "state.b").exists()
    # reboot into a healthy pack at rest
    second = Simulation(scenario.load(SCENARIOS / "rest_after_reboot.toml"), state_dir=tmp_path).run()
    raised = second.faults_raised()
    assert raised and raised[0] == (0.0, "CELL_OV_CRIT")  # reported on the first tick
    assert not (second.outputs & 5).any()  # the contactors never closed
    crit = second.hello["faults"].index("CELL_OV_CRIT")
    assert (0, frames.EV_RESTORED, crit, 0) in [tuple(e) for e in second.events]
    # the event log holds both runs' events with intact records
    log = sorted((tmp_path / "log").glob("*.seg"))
    assert log
    seqs = []
    for seg in log:
        data = seg.read_bytes()
        for o in range(0, len(data), 24):
            seqs.append(struct.unpack_from("<I", data, o)[0])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_without_a_latched_fault_the_pack_closes(tmp_path):
    res = Simulation(scenario.load(SCENARIOS / "rest_after_reboot.toml"), state_dir=tmp_path).run()
    assert (res.outputs & 5 == 5).any()


def test_bmsctl_log_decodes_the_event_log(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    Simulation(scenario.load(SCENARIOS / "charger_no_stop.toml"), state_dir=tmp_path).run()
    r = subprocess.run([str(Path(sys.executable).parent / "bmsctl"), "log", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "seq,t_ms,event,what,value"
    assert any(",fault_set,CELL_OV_CRIT," in ln for ln in lines)
    assert any(",contactor,closed," in ln for ln in lines)
    assert "0 rejected by their CRC" in r.stderr
