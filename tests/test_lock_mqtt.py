"""The production lock on MQTT (issue 19): the virtual board in production
mode on a real mosquitto (password file, as in tests/test_mqtt.py). With
the broker's credentials alone, commands in the bench format, forged MACs,
a MAC under a wrong key, a changed body under a good MAC, a captured signed
command replayed (within its ttl) and an old counter are all refused with
a reason and change nothing (the saved configuration, the published
state); a command signed with the pack's key runs. The telemetry stays
open."""
from __future__ import annotations

import json
import os
import time

import pytest

from host_tools.auth import sign_mqtt
from host_tools.broker import INSTALL_HINT, Mosquitto, mosquitto_binary
from host_tools.flash import build_lib, config_store_text
from host_tools.scenario import load
from host_tools.sim import firmware_config
from host_tools.vboard import VirtualBoard
from tests import test_mqtt as tm
from tests.conftest import ROOT, flash_virtual

KEY = os.urandom(32)
BASE = tm.BASE


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if mosquitto_binary() is None:
        pytest.fail(INSTALL_HINT)
    tmp = tmp_path_factory.mktemp("lockmqtt")
    broker = Mosquitto(tmp / "broker", {"bms": tm.BMS_PASSWORD, "ha": "ha-secret-91c2"}).start()
    fs = tmp / "fs"
    fs.mkdir()
    sc = load(ROOT / "scenarios" / "board.toml")
    board = json.loads((ROOT / "board_configs" / "sim.json").read_text())
    board["mode"] = "production"
    board["mqtt"] = {"node": tm.NODE, "broker": {"host": "127.0.0.1", "port": broker.port, "user": "bms",
                                                 "password": tm.BMS_PASSWORD}, "state_ms": 500, "keepalive_s": 5}
    flash_virtual(fs, board, config_store_text(firmware_config(sc)), KEY)
    build_lib("x64", fs)
    ha = tm.HA(broker.port)
    vb = VirtualBoard(fs, sc).start()
    try:
        assert tm.wait_for(lambda: ha.last(BASE + "availability") == b"online", 20), "the board never came online"
        assert tm.wait_for(lambda: ha.last(BASE + "state") and tm.state(ha)["contactor"] == 3, 10)
        yield vb, ha, fs
    finally:
        vb.stop()
        ha.close()
        broker.stop()


def test_forged_and_replayed_commands_change_nothing(rig):
    vb, ha, fs = rig
    saved = (fs / "config.json").read_bytes()
    reserve = tm.state(ha)["reserve_cpct"]
    now = time.time()
    good = sign_mqtt(KEY, "reserve", {"v": 30}, ctr=5)
    inner = json.loads(json.loads(good)["cmd"])
    attacks = [
        ("bench format, broker credentials only", json.dumps({"v": 30, "ts": now}), "expected {"),
        ("no MAC", json.dumps({"cmd": json.dumps({"v": 30, "ts": int(now), "ctr": 9})}), "expected {"),
        ("MAC under a wrong key", sign_mqtt(os.urandom(32), "reserve", {"v": 30}, ctr=9), "MAC does not match"),
        ("a good MAC on a changed body",
         json.dumps({"cmd": json.dumps(dict(inner, v=90)), "mac": json.loads(good)["mac"]}), "MAC does not match"),
        ("a good MAC for another command", json.dumps({"cmd": json.loads(good)["cmd"], "mac": json.loads(
            sign_mqtt(KEY, "grid_start", {"w": 100, "min": 1}, ctr=5))["mac"]}), "MAC does not match"),
        ("expired", sign_mqtt(KEY, "reserve", {"v": 30}, ctr=6, ttl_s=5, ts=now - 60), "expired"),
    ]
    for what, payload, why in attacks:
        r = tm.command(ha, "reserve", None, raw=payload)
        assert not r["ok"] and why in r["reason"], (what, r)
    time.sleep(1.0)
    assert tm.state(ha)["reserve_cpct"] == reserve and (fs / "config.json").read_bytes() == saved
    # the real one runs
    r = tm.command(ha, "reserve", None, raw=good)
    assert r["ok"] and r["reply"] == ["grid_reserve_cpct = 3000"], r
    assert tm.wait_for(lambda: tm.state(ha)["reserve_cpct"] == 3000, 3)
    saved = (fs / "config.json").read_bytes()
    # captured and replayed within its ttl, and an older counter
    r = tm.command(ha, "reserve", None, raw=good)
    assert not r["ok"] and ("replay" in r["reason"] or "duplicate" in r["reason"]), r
    r = tm.command(ha, "reserve", None, raw=sign_mqtt(KEY, "reserve", {"v": 40}, ctr=4))
    assert not r["ok"] and "replay: counter 4" in r["reason"], r
    r = tm.command(ha, "grid_start", None, raw=sign_mqtt(KEY, "grid_start", {"w": 500, "min": 1}, ctr=5))
    assert not r["ok"] and "replay: counter 5" in r["reason"], r
    time.sleep(1.0)
    st = tm.state(ha)
    assert st["reserve_cpct"] == 3000 and st["grid"] == 0 and st["contactor"] == 3
    assert (fs / "config.json").read_bytes() == saved
    assert (fs / "mqtt_ctr.txt").read_text() == "5"
    # telemetry keeps flowing to anyone on the broker
    t0 = time.monotonic()
    assert tm.wait_for(lambda: ha.since(t0, BASE + "state"), 3)
