"""The production lock (issue 19) on the firmware console under the unix
port: HMAC-SHA256 against CPython's hmac (RFC 4231 vectors and random
inputs), and the attacks on a console in production mode: commands without
a session, Ctrl-C floods and the raw-REPL entry bytes, a captured response
replayed, a wrong key tried repeatedly (the back-off holds), a session used
after it expired, a forged key rotation. Each must change nothing (settings,
stored file, latches, outputs, key); the check's own sabotage proves it
notices a change."""
import hashlib
import hmac
import json
import os
import random
import subprocess

import pytest

from host_tools.firmware import FIRMWARE, micropython_binary
from tests.conftest import ROOT

CHECK = ROOT / "tests" / "mp_lock_check.py"

# RFC 4231 section 4 test cases 1-4, 6, 7 (key, data, HMAC-SHA-256); case 5
# is a truncated output and is checked through CPython below.
RFC4231 = [
    ("0b" * 20, b"Hi There".hex(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    ("0102030405060708090a0b0c0d0e0f10111213141516171819", "cd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.".hex(),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def test_hmac_matches_rfc4231_and_cpython(tmp_path):
    rng = random.Random(4231)
    reqs = [(k, m) for k, m, _ in RFC4231]
    reqs += [(rng.randbytes(rng.choice((0, 1, 32, 63, 64, 65, 200))).hex(), rng.randbytes(rng.randint(0, 300)).hex())
             for _ in range(60)]
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(tmp_path), "hmac"],
                       input="".join(json.dumps({"key": k, "msg": m}) + "\n" for k, m in reqs),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = [json.loads(ln)["mac"] for ln in r.stdout.splitlines()]
    assert len(got) == len(reqs)
    for (k, m, want), g in zip(RFC4231, got):
        assert g == want
    for (k, m), g in zip(reqs, got):
        assert g == hmac.new(bytes.fromhex(k), bytes.fromhex(m), hashlib.sha256).hexdigest()


class Board:
    def __init__(self, d, key):
        self.key = key
        (d / "key.bin").write_bytes(key)
        self.p = subprocess.Popen([micropython_binary(), str(CHECK), str(FIRMWARE), str(d), "serve"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, "the check process ended"
        return json.loads(line)

    def line(self, text):
        return self.ask(hex=(text + "\n").encode().hex())

    def challenge(self):
        a = self.line("auth")
        assert a["replies"][-1] == "OK auth", a
        return bytes.fromhex(a["replies"][0].split()[1])

    def respond(self, c, key=None):
        return self.line("auth " + hmac.new(key or self.key, b"bms-auth|" + c, hashlib.sha256).hexdigest())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


@pytest.fixture
def board(tmp_path):
    b = Board(tmp_path, os.urandom(32))
    yield b
    b.close()


CHANGING = ["clear", "config set balance_start_mv 40", "grid start 500 10", "grid cancel", "repl",
            "key rotate " + "00" * 32 + " " + "00" * 32, "config set cells 4", "CLEAR", "Config set balance_start_mv 40"]


def unchanged(a):
    assert not a["changed"] and not a["interrupted"], a
    assert a["cfg_bsm"] == 15


def test_the_check_notices_a_change(board):
    assert board.ask(sabotage=1)["changed"]


def test_changing_commands_without_a_session_change_nothing(board):
    for cmd in CHANGING:
        a = board.line(cmd)
        unchanged(a)
        assert a["replies"][-1].startswith("ERR ") and "locked" in a["replies"][-1], a
    for cmd in ("status", "cells", "faults", "version", "help", "config get balance_start_mv", "grid status",
                "telemetry off"):
        a = board.line(cmd)
        assert a["replies"][-1].startswith("OK "), a
        assert board.key.hex() not in json.dumps(a["replies"]) and "key.bin" not in "".join(a["replies"][:-1])


def test_ctrl_c_flood_and_raw_repl_entry_are_plain_bytes(board):
    for data in (b"\x03" * 2000, b"\r\x03\x03\x01", b"\x03\x01\x05A\x01", b"\x03\x03\x04", b"\x02\x03\x04\x01"):
        a = board.ask(hex=(data + b"\n").hex())
        unchanged(a)
        assert all(not r.startswith("OK") for r in a["replies"]), a


def test_session_opens_with_the_key_and_a_captured_response_is_worth_nothing(board):
    c = board.challenge()
    resp = "auth " + hmac.new(board.key, b"bms-auth|" + c, hashlib.sha256).hexdigest()
    a = board.line(resp)
    assert a["replies"][-1] == "OK auth" and a["session"], a
    a = board.line("config set balance_start_mv 40")
    assert a["replies"][-1] == "OK config" and a["cfg_bsm"] == 40, a
    board.line("config set balance_start_mv 15")
    board.line("logout")
    # the captured response, replayed: without a new challenge and with one
    a = board.line(resp)
    unchanged(a)
    assert not a["session"] and a["replies"][-1].startswith("ERR auth"), a
    board.challenge()
    a = board.line(resp)
    assert not a["session"] and "wrong response" in a["replies"][-1], a
    a = board.line("config set balance_start_mv 40")
    unchanged(a)


def test_wrong_key_repeatedly_is_held_back_and_logged(board):
    wrong = os.urandom(32)
    fails = 0
    for i in range(4):
        c = board.challenge()
        a = board.respond(c, wrong)
        unchanged(a)
        fails += 1
        assert a["fails"] == fails and not a["session"], a
        # inside the back-off no challenge is given, however often asked
        for _ in range(5):
            b = board.line("auth")
            unchanged(b)
            assert "locked for" in b["replies"][-1], b
        board.ask(advance_ms=(1000 << i) + 100)
    assert [e for e in a["events"] if e[0] == 0] == [[0, n] for n in range(1, fails + 1)]
    # even the right key waits out the back-off, then opens a session
    c = board.challenge()
    board.respond(c, wrong)
    assert "locked for" in board.line("auth")["replies"][-1]
    board.ask(advance_ms=(1000 << fails) + 100)
    a = board.respond(board.challenge())
    assert a["session"] and a["fails"] == 0, a


def test_expired_session_and_forged_rotation_change_nothing(board):
    board.respond(board.challenge())
    board.ask(advance_ms=300_100)
    a = board.line("config set balance_start_mv 40")
    unchanged(a)
    assert not a["session"] and "locked" in a["replies"][-1]
    # a rotation MAC'd under a wrong key, inside a fresh session
    c = board.challenge()
    board.respond(c)
    new = os.urandom(32)
    pad = hmac.new(board.key, b"bms-rotate|" + c, hashlib.sha256).digest()
    sealed = bytes(x ^ y for x, y in zip(new, pad)).hex()
    bad_mac = hmac.new(os.urandom(32), b"bms-rotate-mac|" + c + new, hashlib.sha256).hexdigest()
    a = board.line("key rotate %s %s" % (sealed, bad_mac))
    unchanged(a)
    assert a["key"] == board.key.hex() and "MAC does not match" in a["replies"][-1]


def test_key_rotation_with_the_old_key(board):
    c = board.challenge()
    board.respond(c)
    new = os.urandom(32)
    pad = hmac.new(board.key, b"bms-rotate|" + c, hashlib.sha256).digest()
    sealed = bytes(x ^ y for x, y in zip(new, pad)).hex()
    mac = hmac.new(board.key, b"bms-rotate-mac|" + c + new, hashlib.sha256).hexdigest()
    a = board.line("key rotate %s %s" % (sealed, mac))
    assert a["replies"][-1] == "OK key" and a["key"] == new.hex() and not a["session"], a
    assert board.key.hex() not in json.dumps(a["replies"]) and new.hex() not in json.dumps(a["replies"])
    assert not board.respond(board.challenge())["session"]  # the old key is gone
    board.ask(advance_ms=1100)
    board.key = new
    assert board.respond(board.challenge())["session"]


def test_board_config_mode_is_checked(tmp_path):
    from host_tools.boardcfg import BoardConfigError, load_board_config
    base = json.loads((ROOT / "board_configs" / "sim.json").read_text())
    p = tmp_path / "sim.json"
    p.write_text(json.dumps(dict(base, mode="production")))
    assert load_board_config(p)["mode"] == "production"
    p.write_text(json.dumps(dict(base, mode="prod")))
    with pytest.raises(BoardConfigError, match="mode"):
        load_board_config(p)
