"""Host tools against the virtual board, with the real `mpremote` and
pyserial: flash (compile, copy, verify, boot check), a rejected config that
copies nothing, console commands over the serial line, the monitor with CSV
and a replugged port, the event log over the port, mpremote exec/eval/fs/
mount/soft reset, and Ctrl-C leaving the plant's contactors open."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from host_tools.eventlog import console_command
from host_tools.flash import soft_reset_and_wait_boot
from host_tools.scenario import load
from host_tools.sim import firmware_config
from host_tools.vboard import VirtualBoard
from tests.conftest import ROOT, wait_for

OUT_NEG, OUT_POS = 1, 4


def bmsctl(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def mpremote(port, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], capture_output=True,
                          text=True, timeout=timeout)


def fs_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def scenario():
    return load(ROOT / "scenarios" / "board.toml")


@pytest.fixture(scope="module")
def user_config(tmp_path_factory, scenario):
    p = tmp_path_factory.mktemp("cfg") / "pack.json"
    p.write_text(json.dumps(firmware_config(scenario)))
    return p


@pytest.fixture(scope="module")
def board(tmp_path_factory, scenario, user_config):
    fs = tmp_path_factory.mktemp("boardfs")
    with VirtualBoard(fs, scenario) as vb:
        r = bmsctl("flash", "--board", "sim", "--config", str(user_config), "--port", vb.path)
        vb.flash_output = r
        yield vb


def closed(vb):
    return (vb.plant.pack.physical & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS)


def test_flash_compiles_copies_verifies_and_boots(board):
    r = board.flash_output
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified by SHA-256" in r.stdout and "running version 0.1.0" in r.stdout, r.stdout
    fs = board.fs
    assert (fs / "main.py").exists() and (fs / "board.json").exists()
    assert list((fs / "bms").rglob("*.mpy")) and not list((fs / "bms").rglob("*.py"))
    # the firmware runs: the plant sees it close the contactors
    assert wait_for(lambda: closed(board), 15)


def test_bad_config_stops_the_flash_before_anything_is_copied(board, tmp_path, user_config):
    bad = json.loads(user_config.read_text())
    bad["balance_start_mv"] = 9999
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    before = fs_digest(board.fs)
    r = bmsctl("flash", "--board", "sim", "--config", str(p), "--port", board.path)
    assert r.returncode == 2
    assert "config.balance_start_mv: 9999 out of range" in r.stderr, r.stderr
    # unchanged apart from what the running firmware itself writes (its state and log)
    after = fs_digest(board.fs)
    fw = lambda d: {k: v for k, v in d.items() if not k.startswith(("log/", "state."))}  # noqa: E731
    assert fw(after) == fw(before)


def test_bad_board_config_stops_the_flash_naming_the_field(board, tmp_path, user_config):
    b = json.loads((ROOT / "board_configs" / "pico_bq76952.json").read_text())
    b["afe"]["i2c"]["sda"] = -1  # no such GPIO
    p = tmp_path / "broken_board.json"
    p.write_text(json.dumps(b))
    before = fs_digest(board.fs)
    r = bmsctl("flash", "--board", str(p), "--config", str(user_config), "--port", board.path)
    assert r.returncode == 2
    assert "afe.i2c.sda" in r.stderr, r.stderr
    fw = lambda d: {k: v for k, v in d.items() if not k.startswith(("log/", "state."))}  # noqa: E731
    assert fw(fs_digest(board.fs)) == fw(before)


def test_console_commands_over_serial(board):
    assert wait_for(lambda: closed(board), 15)
    status = console_command(board.path, "status")
    assert status[0].startswith("contactors closed"), status
    with pytest.raises(RuntimeError, match="config.balance_start_mv: 0 out of range"):
        console_command(board.path, "config set balance_start_mv 0")
    assert console_command(board.path, "config set balance_start_mv 22") == ["balance_start_mv = 22"]
    # saved: it survives a soft reset
    boot = soft_reset_and_wait_boot(board.path)
    assert boot["version"] == "0.1.0" and not boot.get("warnings"), boot
    assert console_command(board.path, "config get balance_start_mv") == ["balance_start_mv = 22"]
    with pytest.raises(RuntimeError, match="unknown command"):
        console_command(board.path, "reboot-now")


def test_grid_event_from_the_console(board):
    assert wait_for(lambda: closed(board), 15)
    with pytest.raises(RuntimeError, match="ERR grid"):
        console_command(board.path, "grid start -5 10")
    with pytest.raises(RuntimeError, match="no grid event is running"):
        console_command(board.path, "grid cancel")
    reply = console_command(board.path, "grid start 2000 10")
    assert reply[0].startswith("grid active: 2000 W, 600 s left"), reply
    # the firmware asks the inverter for ~2000 W / 52 V of export current
    assert wait_for(lambda: board.plant.last is not None and 30000 < board.plant.last.grid_ma < 45000, 5)
    reply = console_command(board.path, "grid cancel")
    assert reply[0] == "grid idle; last event: cancelled", reply
    assert wait_for(lambda: board.plant.last is not None and board.plant.last.grid_ma == 0, 5)


def test_monitor_reads_telemetry_logs_csv_and_sends_commands(board, tmp_path):
    csv_path = tmp_path / "tl.csv"
    shot = tmp_path / "shot.txt"
    r = bmsctl("monitor", "--port", board.path, "--duration", "4", "--csv", str(csv_path), "--send", "status",
               "--screenshot", str(shot))
    assert r.returncode == 0, r.stderr
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("host_time,t_ms,tl,contactor") and "cell16_mv" in rows[0]
    assert len(rows) >= 3, rows
    text = shot.read_text()
    assert "connected" in text and "contactors" in text and "OK status" in text, text
    assert "unparsable 0" in text


def test_monitor_csv_of_the_virtual_board_replays(board, tmp_path, user_config):
    csv_path = tmp_path / "tl.csv"
    r = bmsctl("monitor", "--port", board.path, "--duration", "6", "--csv", str(csv_path))
    assert r.returncode == 0, r.stderr
    assert len(csv_path.read_text().splitlines()) >= 5
    dec = tmp_path / "dec.csv"
    r = bmsctl("replay", str(csv_path), "--config", str(user_config), "--decisions", str(dec))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "monitor CSV" in r.stdout and "SOC error       whole record" in r.stdout, r.stdout
    rows = dec.read_text().splitlines()
    assert len(rows) >= 5 and rows[0].startswith("t_s,no_data,contactor")
    # the board's pack, healthy and discharging: the replayed firmware closes and raises no fault row
    assert "closed" in r.stdout.split("contactors", 1)[1].splitlines()[0]
    assert "faults          none raised" in r.stdout, r.stdout


def test_event_log_over_the_port(board, tmp_path):
    out = tmp_path / "log.csv"
    r = bmsctl("log", "--port", board.path, "--csv", str(out))
    assert r.returncode == 0, r.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "seq,t_ms,event,what,value"
    assert any(",boot," in x for x in rows) and any(",contactor,closed," in x for x in rows), rows


def test_monitor_survives_unplug_and_replug(tmp_path, scenario, board):
    from host_tools.monitor import LineParser, MonitorState, SerialReader
    link = tmp_path / "ttyBMS"
    st = MonitorState()
    lock = threading.Lock()
    parser = LineParser(st)
    reader = SerialReader(str(link), parser, st, lock)
    reader.start()
    try:
        with VirtualBoard(board.fs, scenario, link=link):
            assert wait_for(lambda: st.n_telemetry >= 2, 15), st
        seen = st.n_telemetry
        assert wait_for(lambda: not st.connected, 5)  # unplugged: the reader noticed
        time.sleep(1.0)
        with VirtualBoard(board.fs, scenario, link=link):  # replugged (a new device behind the same name)
            assert wait_for(lambda: st.connected and st.n_telemetry > seen + 1, 15), st
        assert st.reconnects >= 1
    finally:
        reader.stopping.set()
        reader.join(timeout=3)


def test_mpremote_exec_eval_fs_mount_and_soft_reset(board, tmp_path):
    r = mpremote(board.path, "exec", "import bms; print('v', bms.VERSION)")
    assert r.returncode == 0 and "v 0.1.0" in r.stdout, r.stdout + r.stderr
    # mpremote's soft reset stopped the firmware: outputs safe, plant contactors open
    assert wait_for(lambda: not closed(board), 5)
    r = mpremote(board.path, "eval", "6*7")
    assert r.stdout.strip() == "42"
    r = mpremote(board.path, "fs", "ls")
    assert r.returncode == 0 and "main.py" in r.stdout and "bms/" in r.stdout
    size = (board.fs / "board.json").stat().st_size
    assert any(line.split()[:2] == [str(size), "board.json"] for line in r.stdout.splitlines()), r.stdout
    src = tmp_path / "note.txt"
    src.write_text("hello from the host\n")
    r = mpremote(board.path, "fs", "cp", str(src), ":note.txt", "+", "fs", "cat", "note.txt")
    assert r.returncode == 0 and "hello from the host" in r.stdout, r.stdout + r.stderr
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "probe.py").write_text("import helper\nprint('mounted', helper.X)\n")
    (tmp_path / "m" / "helper.py").write_text("X = 42\n")
    r = mpremote(board.path, "mount", str(tmp_path / "m"), "exec", "import probe")
    assert r.returncode == 0 and "mounted 42" in r.stdout, r.stdout + r.stderr
    resets = board.resets
    r = mpremote(board.path, "soft-reset")
    assert r.returncode == 0
    assert board.resets > resets
    r = mpremote(board.path, "exec", "raise ValueError('boom')")
    assert r.returncode != 0 and "ValueError: boom" in r.stderr + r.stdout
    # back to the firmware: Ctrl-D in the friendly REPL runs main.py again
    boot = soft_reset_and_wait_boot(board.path)
    assert boot["version"] == "0.1.0"
    assert wait_for(lambda: closed(board), 15)


def test_ctrl_c_opens_the_contactors_then_gives_the_repl(board):
    import serial
    if not closed(board):
        soft_reset_and_wait_boot(board.path)
    assert wait_for(lambda: closed(board), 15)
    with serial.Serial(board.path, 115200, timeout=0.2) as s:
        s.write(b"\x03")
        t0 = time.monotonic()
        assert wait_for(lambda: not closed(board), 2)
        dt = time.monotonic() - t0
        buf = b""
        t_end = time.monotonic() + 5
        while b">>> " not in buf and time.monotonic() < t_end:
            buf += s.read(4096)
    assert b"outputs in the safe state" in buf and buf.rstrip().endswith(b">>>"), buf[-300:]
    assert dt < 1.0
    soft_reset_and_wait_boot(board.path)  # leave it running
