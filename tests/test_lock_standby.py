"""The locked stand-by (issue 19): a production board whose start-up fails
(here: a config.json that does not parse) must not fall back to the REPL,
or an attacker with a USB cable only has to break the start-up. On the
virtual board: Ctrl-C floods and the raw-REPL entry reach nothing, nothing
is energised, `status` says what failed, `repl` and `reset` need a session
(the same key and back-off as the running console), and with the key `repl`
opens the REPL for maintenance. The same broken flash in bench mode still
gives the REPL, as it always did."""
from __future__ import annotations

import os
import time

import pytest

from host_tools.auth import open_session, command
from host_tools.eventlog import console_command
from host_tools.scenario import load
from host_tools.vboard import VirtualBoard
from tests.conftest import ROOT, SIM_BOARD, flash_virtual

KEY = os.urandom(32)


def flash(fs, mode):
    flash_virtual(fs, dict(SIM_BOARD, mode=mode), '{"cells": 16, "ov_fault_mv": ', KEY)  # config cut off mid-write


def read_for(s, seconds, until=None):
    buf = b""
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and (until is None or until not in buf):
        buf += s.read(65536)
    return buf


def energised(vb):
    return vb.plant.pack.physical != 0


@pytest.fixture(scope="module")
def standby(tmp_path_factory):
    fs = tmp_path_factory.mktemp("standbyfs")
    flash(fs, "production")
    with VirtualBoard(fs, load(ROOT / "scenarios" / "board.toml")) as vb:
        time.sleep(3)
        yield vb


def test_ctrl_c_and_raw_repl_reach_nothing_and_status_says_why(standby):
    import serial
    before = {n: (standby.fs / n).read_bytes() for n in ("config.json", "key.bin")}
    with serial.Serial(standby.path, 115200, timeout=0.2) as s:
        buf = read_for(s, 0.5)
        for data in (b"\x03" * 3000, b"\r\x03\x03", b"\r\x01", b"\x05A\x01", b"\x04", b"\x02",
                     b"\r\x03\x03\r\x01print(6*7)\x04"):
            s.write(data)
            buf += read_for(s, 0.3)
        buf += read_for(s, 1.0)
    for sign in (b"raw REPL", b">>>", b"KeyboardInterrupt", b"soft reboot", b"paste mode", b"42"):
        assert sign not in buf, (sign, buf[-400:])
    st = " ".join(console_command(standby.path, "status"))
    assert "standby" in st and "config" in st, st
    assert not energised(standby)
    assert {n: (standby.fs / n).read_bytes() for n in ("config.json", "key.bin")} == before


def test_maintenance_only_with_the_key(standby):
    import serial
    for cmd in ("repl", "reset", "config set balance_start_mv 40", "clear"):
        with pytest.raises(RuntimeError):
            console_command(standby.path, cmd)
    with pytest.raises(RuntimeError, match="wrong response"):
        console_command(standby.path, "repl", key=os.urandom(32))
    with pytest.raises(RuntimeError, match="locked for"):  # the back-off holds in stand-by too
        console_command(standby.path, "repl", key=KEY)
    fails = standby.fs / "auth_fails.txt"  # what a reset reads back
    n, check = map(int, fails.read_text().split())
    assert n == 1 and check == 1 ^ 0x2AAAAAAA
    assert not energised(standby)
    time.sleep(2.2)  # the back-off of that wrong key
    with serial.Serial(standby.path, 115200, timeout=0.2) as s:
        s.reset_input_buffer()
        open_session(s, KEY)
        command(s, "repl")
        time.sleep(0.5)
        s.write(b"\r\n")
        buf = read_for(s, 10, b">>> ")
    assert b">>> " in buf, buf[-300:]
    assert not energised(standby)
    assert not fails.exists()  # a good session clears the count


@pytest.mark.parametrize("text,n", [(None, 0), ("3 %d\n" % (3 ^ 0x2AAAAAAA), 3), ("3 4\n", 11), ("lots", 11),
                                    ("", 11), ("-1 %d" % (-1 ^ 0x2AAAAAAA), 11), (b"\xff\xfe", 11)])
def test_the_persisted_count_fails_closed(tmp_path, text, n):
    from tests.conftest import mp_run
    if isinstance(text, bytes):
        (tmp_path / "auth_fails.txt").write_bytes(text)
    elif text is not None:
        (tmp_path / "auth_fails.txt").write_text(text)
    r = mp_run("from bms import auth\nn = auth.read_fails(%r)\nprint(n, auth._wait(n))" % str(tmp_path))
    assert r.returncode == 0, r.stderr
    got, wait_ms = map(int, r.stdout.split())
    assert got == n and wait_ms == (0 if n == 0 else min(1000 << (n - 1), 600000)), r.stdout


def test_bench_mode_still_gives_the_repl(tmp_path):
    import serial
    flash(tmp_path, "bench")
    with VirtualBoard(tmp_path, load(ROOT / "scenarios" / "board.toml")) as vb:
        time.sleep(3)
        with serial.Serial(vb.path, 115200, timeout=0.2) as s:
            s.write(b"\r\x03\r\n")
            buf = read_for(s, 10, b">>> ")
        assert b">>> " in buf, buf[-300:]
        assert not energised(vb)
