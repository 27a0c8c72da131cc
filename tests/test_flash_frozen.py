"""`bmsctl flash` on a board whose image has the firmware frozen in
(firmware/manifest.py): only the configuration files are copied, stale
bms/ files on its filesystem go; on an unfrozen board the firmware is
copied as before. The probe itself runs on the unix port (nothing frozen)."""
from __future__ import annotations

import json
import subprocess

from host_tools import flash
from host_tools.firmware import micropython_binary
from tests.conftest import ROOT

BOARD = ROOT / "board_configs" / "pico_bq76952.json"
PACK = ROOT / "board_configs" / "packs" / "lfp_16s_100ah.json"


def test_probe_says_not_frozen_on_a_port_without_the_firmware_frozen():
    r = subprocess.run([micropython_binary(), "-c", flash.FROZEN_SCRIPT], capture_output=True, text=True, timeout=30)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"frozen": None}, r.stdout + r.stderr


def _fake_board(monkeypatch, frozen):
    calls = []

    def mpremote(port, *args, timeout=120):
        calls.append(args)
        if args[:2] == ("exec", flash.FROZEN_SCRIPT):
            return json.dumps({"frozen": frozen}) + "\n"
        if args[0] == "exec" and "hashlib" in args[1]:
            return "{}\n"  # hashes are not modelled: verification fails after the copy
        return ""
    version = frozen or flash.firmware_version()
    monkeypatch.setattr(flash, "mpremote", mpremote)
    monkeypatch.setattr(flash, "soft_reset_and_wait_boot", lambda port, t=30: {"version": version})
    return calls


def _copied(calls):
    return [a for c in calls for a in c if isinstance(a, str) and a.startswith("/") and not a.startswith(":")]


def test_frozen_board_gets_only_the_configuration(monkeypatch, tmp_path):
    calls = _fake_board(monkeypatch, "0.0.9")
    try:
        flash.flash(BOARD, PACK, "/dev/fake", log=lambda *_: None)
    except flash.FlashError as e:
        # verification reads hashes from the fake board (not modelled): the copy plan is what is tested
        assert "verification failed" in str(e)
    copied = sorted(p.rsplit("/", 1)[-1] for p in _copied(calls))
    assert copied == ["board.json", "config.json"], copied
    prepare = [c for c in calls if c[0] == "exec" and "_rm('bms'" in c[1]][0][1]
    assert "_keep = ['board.json', 'config.json']" in prepare


def test_unfrozen_board_gets_the_firmware(monkeypatch):
    calls = _fake_board(monkeypatch, None)
    try:
        flash.flash(BOARD, PACK, "/dev/fake", log=lambda *_: None)
    except flash.FlashError as e:
        assert "verification failed" in str(e)
    copied = {p.rsplit("/", 1)[-1] for p in _copied(calls)}
    assert {"board.json", "config.json", "main.py", "app.mpy", "limits.mpy"} <= copied
