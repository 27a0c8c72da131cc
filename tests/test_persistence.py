"""Persistence on littlefs under the MicroPython unix port: the stores, and
power cuts at random flash operations (a short run here; `make powercut`
runs 10,000)."""
import json
import subprocess

from host_tools.firmware import FIRMWARE, ROOT, micropython_binary

MP = ROOT / "host_tools" / "mp"


def mp(*args, timeout=600):
    r = subprocess.run([micropython_binary(), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_stores():
    out = mp(ROOT / "tests" / "mp_persist_check.py", FIRMWARE, MP)
    assert all(out.values()), out


def test_power_cuts():
    out = mp(MP / "powercut.py", FIRMWARE, 1500, 7)
    assert out["cuts"] == 1500
    assert all(out["ops"][k] > 100 for k in ("config", "state", "log")), out
    for k in ("unmountable", "config_mixed", "config_missing", "state_corrupt_accepted", "state_wrong",
              "log_corrupt_accepted", "log_lost_beyond_newest"):
        assert out[k] == 0, (k, out)
    full = out["full"]
    assert full["fill_errno"] == 28  # the filesystem really was full
    assert full["newest_after"] > full["oldest_after"] > full["oldest_before"]  # the oldest records made room
    assert full["appended"] + full["dropped"] == full["tried"]


def test_a_setting_change_recomputes_what_derives_from_it():
    out = mp(ROOT / "tests" / "mp_reconfigure_check.py", FIRMWARE)
    assert out == {"before": 0, "bad_rejected": True, "cells_rejected": True, "oom_whole": True, "still_default": True,
                   "after": 1, "contactors_open": True}, out
