"""The production lock on the virtual board (issue 19): the firmware in
production mode behind its pseudo-terminal, attacked over the serial line
as a board on /dev/ttyACM0 would be. Ctrl-C floods and the raw-REPL entry
sequence (the bytes mpremote sends), mpremote itself, commands without a
session, a wrong key: each leaves the contactors closed, the settings and
the key as they were, the firmware running (no soft or hard reset) and no
REPL reached. The firmware's loop ending (the plant link gone) resets the
board instead of opening a REPL. With the key, a session changes a setting
and `repl` (maintenance) opens the REPL with the outputs safe."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from host_tools.auth import open_session, command
from host_tools.eventlog import console_command
from host_tools.flash import config_store_text
from host_tools.scenario import load
from host_tools.sim import firmware_config
from host_tools.vboard import VirtualBoard
from tests.conftest import ROOT, SIM_BOARD, flash_virtual, wait_for

OUT_NEG, OUT_POS = 1, 4
KEY = os.urandom(32)


def closed(vb):
    return (vb.plant.pack.physical & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS)


def fs_state(fs):
    return {n: (fs / n).read_bytes() for n in ("config.json", "key.bin")}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    sc = load(ROOT / "scenarios" / "board.toml")
    fs = tmp_path_factory.mktemp("prodfs")
    flash_virtual(fs, dict(SIM_BOARD, mode="production"), config_store_text(firmware_config(sc)), KEY)
    with VirtualBoard(fs, sc) as vb:
        assert wait_for(lambda: closed(vb), 20), vb.plant.errors
        yield vb


def snapshot(vb):
    """The board's flash (settings, key) and its resets so far."""
    return fs_state(vb.fs), (vb.resets, vb.hard_resets, vb.crashes)


def unchanged(vb, before):
    assert closed(vb)
    assert snapshot(vb) == before


def test_ctrl_c_floods_and_raw_repl_entry_reach_nothing(board):
    import serial
    before = snapshot(board)
    with serial.Serial(board.path, 115200, timeout=0.2) as s:
        buf = b""
        # a flood, mpremote's raw-REPL entry (\r Ctrl-C Ctrl-C, \r Ctrl-A),
        # raw-paste, Ctrl-D (soft reset), Ctrl-B, Ctrl-E (paste mode)
        for data in (b"\x03" * 3000, b"\r\x03\x03", b"\r\x01", b"\x05A\x01", b"\x04", b"\x02", b"\x05",
                     b"\r\x03\x03\r\x01print(1)\x04"):
            s.write(data)
            time.sleep(0.2)
            buf += s.read(65536)
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            buf += s.read(65536)
        s.write(b"\nstatus\n")
        t_end = time.monotonic() + 5
        while b"OK status" not in buf and time.monotonic() < t_end:
            buf += s.read(4096)
    for sign in (b"raw REPL", b">>>", b"KeyboardInterrupt", b"soft reboot", b"paste mode", b"R\x01"):
        assert sign not in buf, (sign, buf[-400:])
    assert b"OK status" in buf and b'{"tl":' in buf.split(b"\r\x03\x03")[-1], buf[-400:]
    unchanged(board, before)
    # the real mpremote gets no raw REPL: it keeps waiting for the banner
    # while the telemetry flows (its read timeout restarts on every byte,
    # as with a real board), or gives up; it never runs the code
    p = subprocess.Popen([sys.executable, "-m", "mpremote", "connect", board.path, "exec", "print(6*7)"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=4)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    assert "42" not in out and p.returncode != 0, out
    unchanged(board, before)


def test_changing_commands_without_a_session_or_with_a_wrong_key(board):
    before = snapshot(board)
    for cmd in ("clear", "config set balance_start_mv 40", "grid start 500 10", "repl"):
        with pytest.raises(RuntimeError, match="locked"):
            console_command(board.path, cmd)
    with pytest.raises(RuntimeError, match="wrong response"):
        console_command(board.path, "config set balance_start_mv 40", key=os.urandom(32))
    with pytest.raises(RuntimeError, match="locked for"):  # the back-off holds
        console_command(board.path, "config set balance_start_mv 40", key=KEY)
    assert console_command(board.path, "config get balance_start_mv") == ["balance_start_mv = 15"]
    assert KEY.hex() not in " ".join(console_command(board.path, "help"))
    unchanged(board, before)


def test_the_loop_ending_resets_the_board_never_a_repl(board):
    import serial
    assert wait_for(lambda: closed(board), 20)
    h0, r0, c0 = board.hard_resets, board.resets, board.crashes
    with serial.Serial(board.path, 115200, timeout=0.2) as s:
        board.plant._drop()  # the front end gone: the loop ends
        assert wait_for(lambda: board.hard_resets == h0 + 1, 10)
        assert wait_for(lambda: closed(board), 20)  # back up from power-up
        buf = s.read(65536)
        s.write(b"\r\n")
        time.sleep(0.5)
        buf += s.read(65536)
    assert b">>>" not in buf and b"raw REPL" not in buf
    assert board.resets == r0 and board.crashes == c0


def bmsctl(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_reflashed_only_with_the_key(board, tmp_path):
    assert wait_for(lambda: closed(board), 20)
    before = snapshot(board)
    sc = load(ROOT / "scenarios" / "board.toml")
    cfg = tmp_path / "pack.json"
    cfg.write_text(json.dumps(firmware_config(sc)))
    prod = tmp_path / "sim_prod.json"
    prod.write_text(json.dumps(dict(json.loads((ROOT / "board_configs" / "sim.json").read_text()), mode="production")))
    keyf = tmp_path / "pack.key"
    assert bmsctl("keygen", "--out", str(keyf)).returncode == 0
    assert bmsctl("keygen", "--out", str(keyf)).returncode == 2  # never overwritten
    r = bmsctl("flash", "--board", str(prod), "--config", str(cfg), "--port", board.path)
    assert r.returncode == 2 and "give the pack's key" in r.stderr, r.stderr
    # a bench firmware (no key needed) over a production board: refused, nothing copied
    r = bmsctl("flash", "--board", "sim", "--config", str(cfg), "--port", board.path)
    assert r.returncode == 2 and "reflashed only with its key" in r.stderr, r.stdout + r.stderr
    r = bmsctl("flash", "--board", str(prod), "--config", str(cfg), "--port", board.path, "--key-file", str(keyf))
    assert r.returncode == 2 and "refused the key" in r.stderr, r.stdout + r.stderr
    unchanged(board, before)
    time.sleep(2.2)  # the back-off of that wrong key
    keyf2 = tmp_path / "right.key"
    keyf2.write_bytes(KEY)
    r = bmsctl("flash", "--board", str(prod), "--config", str(cfg), "--port", board.path, "--key-file", str(keyf2))
    assert r.returncode == 0 and "unlocked with its key" in r.stdout and "running version" in r.stdout, r.stdout + r.stderr
    assert (board.fs / "key.bin").read_bytes() == KEY
    assert wait_for(lambda: closed(board), 20)
    with pytest.raises(RuntimeError, match="locked"):  # production again after the flash
        console_command(board.path, "clear")


def test_with_the_key_a_session_changes_a_setting_and_repl_is_maintenance(board):
    import serial
    assert wait_for(lambda: closed(board), 20)
    h0 = board.hard_resets
    time.sleep(2.2)  # the back-off of the earlier wrong attempt (it survives nothing: a reset cleared it)
    assert console_command(board.path, "config set balance_start_mv 20", key=KEY) == ["balance_start_mv = 20"]
    with serial.Serial(board.path, 115200, timeout=0.2) as s:
        open_session(s, KEY)
        command(s, "repl")
        assert wait_for(lambda: not closed(board), 5)
        time.sleep(0.5)
        s.write(b"\r\n")  # the REPL answers with a prompt
        buf = b""
        t_end = time.monotonic() + 10
        while b">>> " not in buf and time.monotonic() < t_end:
            buf += s.read(4096)
    assert buf.rstrip().endswith(b">>>"), buf[-300:]
    assert board.hard_resets == h0  # the REPL, not a reset
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.path, "exec", "print(6*7)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "42" in r.stdout, r.stdout + r.stderr
