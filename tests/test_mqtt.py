"""MQTT against a real broker: mosquitto on a loopback port with a password
file (no anonymous clients), the virtual board (firmware under the unix
port, real time against the plant) connected to it with the client
installed from PyPI, and paho-mqtt standing in for Home Assistant.

- the discovery configs, checked against Home Assistant's documented
  schema (keys, device and state classes, units);
- the telemetry against the plant;
- commands and their effects, each answered on the result topic and logged;
- bad input refused with a reason and nothing changed;
- the broker frozen (a half-open connection that never answers), then
  killed and restarted: telemetry resumes, no tick overruns, the contactors
  stay as they were; the board's death shows its last will (offline).
"""
from __future__ import annotations

import json
import re
import threading
import time

import pytest

from host_tools.broker import INSTALL_HINT, Mosquitto, mosquitto_binary
from host_tools.flash import build, build_lib, config_store_text
from host_tools.scenario import load
from host_tools.sim import firmware_config
from host_tools.vboard import VirtualBoard
from tests.conftest import ROOT, wait_for

mqtt = pytest.importorskip("paho.mqtt.client")

NODE = "t1"
BASE = f"bms/{NODE}/"
BMS_PASSWORD = "bms-secret-7f3a"
OUT_NEG, OUT_POS = 1, 4

# Home Assistant's documented discovery schema, the parts this firmware
# uses (home-assistant.io integrations/mqtt, sensor.mqtt, binary_sensor.mqtt,
# number.mqtt, text.mqtt, button.mqtt; units and classes from
# developers.home-assistant.io core/entity/sensor).
COMMON_KEYS = {"name", "unique_id", "default_entity_id", "availability_topic", "device", "origin",
               "entity_category", "icon", "enabled_by_default", "qos", "json_attributes_topic"}
PLATFORM_KEYS = {
    "sensor": {"state_topic", "value_template", "device_class", "state_class", "unit_of_measurement", "options",
               "expire_after", "force_update", "suggested_display_precision"},
    "binary_sensor": {"state_topic", "value_template", "device_class", "payload_on", "payload_off", "expire_after"},
    "number": {"command_topic", "command_template", "state_topic", "value_template", "min", "max", "step", "mode",
               "unit_of_measurement", "device_class", "retain", "optimistic"},
    "text": {"command_topic", "command_template", "state_topic", "value_template", "min", "max", "mode", "pattern",
             "retain"},
    "button": {"command_topic", "command_template", "payload_press", "device_class", "retain"},
}
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}, "number": {"command_topic"},
            "text": {"command_topic"}, "button": {"command_topic"}}
SENSOR_UNITS = {"voltage": {"V", "mV", "\u00b5V", "kV", "MV"}, "current": {"A", "mA"},
                "power": {"W", "kW", "mW", "MW", "GW", "TW"}, "battery": {"%"},
                "temperature": {"\u00b0C", "\u00b0F", "K"},
                "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"},
                "enum": {None}}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
BINARY_CLASSES = {"problem", "running", "battery", "battery_charging", "connectivity", "power", "safety"}
ENTITY_CATEGORIES = {"config", "diagnostic"}


class HA:
    """paho-mqtt as Home Assistant: subscribes to everything, keeps it."""

    def __init__(self, port: int):
        self.lock = threading.Lock()
        self.msgs: list[tuple[float, str, bytes, bool]] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha")
        self.c.username_pw_set("ha", "ha-secret-91c2")
        self.c.reconnect_delay_set(min_delay=1, max_delay=1)
        self.c.on_message = self._msg
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe("#")
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()

    def _msg(self, c, u, m):
        with self.lock:
            self.msgs.append((time.monotonic(), m.topic, bytes(m.payload), bool(m.retain)))

    def since(self, t0: float, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, tp, p, _ in self.msgs if t >= t0 and tp == topic]

    def last(self, topic: str):
        with self.lock:
            for t, tp, p, r in reversed(self.msgs):
                if tp == topic:
                    return p
        return None

    def publish(self, topic, payload, retain=False):
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def retained(port: int, topic_filter: str, settle_s: float = 1.0) -> dict[str, bytes]:
    """What a client that subscribes now gets with the RETAIN flag (MQTT
    3.1.1 3.3.1.3: set only on messages sent for a new subscription)."""
    got: dict[str, bytes] = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-late")
    c.username_pw_set("ha", "ha-secret-91c2")
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, bytes(m.payload)) if m.retain and m.payload else None
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic_filter)
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(settle_s)
    c.loop_stop()
    c.disconnect()
    return got


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if mosquitto_binary() is None:
        pytest.fail(INSTALL_HINT)
    tmp = tmp_path_factory.mktemp("mqtt")
    broker = Mosquitto(tmp / "broker", {"bms": BMS_PASSWORD, "ha": "ha-secret-91c2"}).start()
    fs = tmp / "fs"
    fs.mkdir()
    # the firmware and the client as `bmsctl flash` installs them (.mpy):
    # the modules a command loads on demand (config schema, rarely used
    # console commands) load as bytecode, not compiled from source mid-cycle
    build("x64", fs)
    build_lib("x64", fs)
    sc = load(ROOT / "scenarios" / "board.toml")
    board = json.loads((ROOT / "board_configs" / "sim.json").read_text())
    board["mqtt"] = {"node": NODE, "broker": {"host": "127.0.0.1", "port": broker.port, "user": "bms",
                                              "password": BMS_PASSWORD}, "state_ms": 500, "keepalive_s": 5}
    (fs / "board.json").write_text(json.dumps(board))
    (fs / "config.json").write_text(config_store_text(firmware_config(sc)))
    ha = HA(broker.port)
    vb = VirtualBoard(fs, sc).start()
    vb.fs_dir = fs
    try:
        assert wait_for(lambda: ha.last(BASE + "availability") == b"online", 20), "the board never came online"
        assert wait_for(lambda: ha.last(BASE + "state") and state(ha)["contactor"] == 3, 10), "contactors not closed"
        yield broker, vb, ha
    finally:
        vb.stop()
        ha.close()
        broker.stop()


def state(ha) -> dict:
    return json.loads(ha.last(BASE + "state"))


def command(ha, cmd, body, raw=None, retain=False, timeout_s=5.0):
    """Sends one command; returns its result (the newest result after it)."""
    t0 = time.monotonic()
    ha.publish(BASE + "cmd/" + cmd, raw if raw is not None else json.dumps(body), retain=retain)
    got = wait_for(lambda: ha.since(t0, BASE + "result"), timeout_s)
    assert got, f"no result for {cmd} {raw or body!r}"
    return json.loads(got[-1])


def discovery(ha) -> dict[str, dict]:
    with ha.lock:
        return {tp: json.loads(p) for _, tp, p, r in ha.msgs if tp.startswith("homeassistant/") and tp.endswith("/config")}


def test_discovery_configs_follow_home_assistants_schema(rig):
    broker, vb, ha = rig
    # 16 sensors + contactors + grid + one binary sensor per fault row + reserve, grid start/cancel, last result
    names = json.loads(json.dumps(vb.plant.link.hello["faults"]))
    want = 16 + 2 + len(names) + 4
    assert wait_for(lambda: len(discovery(ha)) >= want, 15), f"{len(discovery(ha))} of {want} configs"
    cfgs = discovery(ha)
    assert len(cfgs) == want, sorted(cfgs)
    uids = set()
    samples = {BASE + "state": state(ha), BASE + "faults": json.loads(ha.last(BASE + "faults"))}
    for topic, c in cfgs.items():
        m = re.fullmatch(r"homeassistant/(\w+)/bms_t1/(\w+)/config", topic)
        assert m, topic
        comp = m.group(1)
        assert comp in PLATFORM_KEYS, topic
        extra = set(c) - COMMON_KEYS - PLATFORM_KEYS[comp]
        assert not extra, f"{topic}: keys Home Assistant does not know for a {comp}: {extra}"
        assert REQUIRED[comp] <= set(c), topic
        assert c["unique_id"] not in uids, topic
        uids.add(c["unique_id"])
        assert c["default_entity_id"] == comp + "." + c["unique_id"]
        assert c["availability_topic"] == BASE + "availability"
        assert c["device"]["identifiers"] == ["bms_" + NODE] and c["device"]["sw_version"]
        assert c["origin"]["name"]
        assert c.get("entity_category", "diagnostic") in ENTITY_CATEGORIES
        if comp == "sensor" and "device_class" in c:
            dc = c["device_class"]
            assert c.get("unit_of_measurement") in SENSOR_UNITS[dc], topic
            if dc == "energy":
                assert c["state_class"] in ("total", "total_increasing"), topic  # energy may not be measurement
            elif dc == "enum":
                assert "state_class" not in c and c["options"], topic
            else:
                assert c["state_class"] in STATE_CLASSES, topic
        if comp == "binary_sensor":
            assert c["device_class"] in BINARY_CLASSES, topic
        if comp in ("number", "text", "button"):
            assert c["command_topic"].startswith(BASE + "cmd/")
            assert "now().timestamp()" in c["command_template"], topic  # every command carries its time
        if comp == "number":
            assert c["min"] < c["max"] and c["step"] > 0 and c["mode"] in ("auto", "box", "slider")
        # every field a template reads is in what the board publishes
        for key in re.findall(r"value_json\.(\w+)", c.get("value_template", "")):
            if c["state_topic"] in samples:
                assert key in samples[c["state_topic"]], f"{topic}: {key} not in {c['state_topic']}"
    # the Energy dashboard's battery: charged and discharged, Wh, total_increasing
    for obj in ("energy_charged", "energy_discharged"):
        c = cfgs[f"homeassistant/sensor/bms_{NODE}/{obj}/config"]
        assert (c["device_class"], c["state_class"], c["unit_of_measurement"]) == ("energy", "total_increasing", "Wh")
    assert {f"fault_{n.lower()}" for n in names} <= {t.split("/")[3] for t in cfgs}
    assert f"homeassistant/button/bms_{NODE}/clear/config" not in cfgs  # remote clear is off by default
    # retained: a Home Assistant that starts later gets every config from the broker
    late = retained(broker.port, "homeassistant/#")
    assert {tp for tp, p in late.items()} == set(cfgs) and all(json.loads(p) == cfgs[tp] for tp, p in late.items())
    # Home Assistant restarts: it says online, the board announces again
    t0 = time.monotonic()
    ha.publish("homeassistant/status", "online")
    assert wait_for(lambda: len({tp for tm, tp, _, _ in ha.msgs if tm >= t0 and tp in cfgs}) == want, 15)


def test_no_secret_in_anything_published(rig):
    broker, vb, ha = rig
    with ha.lock:
        assert not [tp for _, tp, p, _ in ha.msgs if BMS_PASSWORD.encode() in p]


def test_telemetry_follows_the_plant(rig):
    broker, vb, ha = rig
    t0 = time.monotonic()
    assert wait_for(lambda: len(ha.since(t0, BASE + "state")) >= 2, 5)
    pack = vb.plant.pack
    s = state(ha)
    cells = json.loads(ha.last(BASE + "cells"))
    # the plant moves on while the message travels: tolerances of a few ticks
    assert abs(s["pack_mv"] / 1000 - float(pack.pack_v())) < 0.3, (s["pack_mv"], pack.pack_v())
    assert abs(s["i_ma"] / 1000 - pack.current_a) < 2.0, (s["i_ma"], pack.current_a)
    cv = [float(v) for v in pack.cell_v()]
    assert len(cells["mv"]) == len(cv) == 16
    assert max(abs(m / 1000 - v) for m, v in zip(cells["mv"], cv)) < 0.02
    assert s["cell_min_mv"] <= min(cells["mv"]) + 5 and s["cell_max_mv"] >= max(cells["mv"]) - 5
    assert 200 <= s["t_min_dc"] <= s["t_max_dc"] <= 300  # 25 degC ambient
    assert s["contactor"] == 3 and s["n_faults"] == 0, s
    assert s["overruns"] == 0, s
    # the boot's events went out on the event topic
    assert any(json.loads(p)["code"] == 5 for p in ha.since(0, BASE + "event"))


def test_commands_take_effect_and_are_logged(rig):
    broker, vb, ha = rig
    now = time.time()
    r = command(ha, "reserve", {"v": 20, "ts": now, "id": "r1"})
    assert r == {"id": "r1", "cmd": "reserve", "ok": True, "reason": None, "reply": ["grid_reserve_cpct = 2000"]}
    assert wait_for(lambda: state(ha)["reserve_cpct"] == 2000, 3)
    # saved exactly as `config set` saves it
    saved = json.loads((vb.fs_dir / "config.json").read_text().rsplit("\n", 2)[0])
    assert saved["grid_reserve_cpct"] == 2000
    r = command(ha, "grid_start", {"w": 1500, "min": 10, "ts": time.time(), "id": "g1"})
    assert r["ok"] and r["reply"][0].startswith("grid active: 1500 W"), r
    assert wait_for(lambda: state(ha)["grid"] == 1 and state(ha)["grid_w"] == 1500, 3)
    assert wait_for(lambda: vb.plant.pack.current_a < -20, 5)  # exporting: ~29 A at 52 V
    r = command(ha, "grid_cancel", {"ts": time.time(), "id": "c1"})
    assert r["ok"] and r["reply"][0].startswith("grid idle; last event: cancelled"), r
    assert wait_for(lambda: state(ha)["grid"] == 0, 3)
    r = command(ha, "clear", {"ts": time.time(), "id": "x1"})
    assert not r["ok"] and "remote clear is off" in r["reason"]
    # each one in the event log (EV_REMOTE_CMD = 13: arg the command, value 1 done / 0 refused)
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end:
        ev = [json.loads(p) for p in ha.since(0, BASE + "event")]
        got = [(e["arg"], e["value"]) for e in ev if e["code"] == 13]
        if got[-4:] == [(0, 1), (1, 1), (2, 1), (3, 0)]:
            break
        time.sleep(0.1)
    assert got[-4:] == [(0, 1), (1, 1), (2, 1), (3, 0)], got


BAD = [
    # (command, body or None, raw payload or None, words the reason must hold)
    ("reserve", None, "x" * 1000, "longer than 256"),
    ("reserve", None, "{not json", "invalid JSON"),
    ("reserve", None, "[1, 2]", "expected a JSON object"),
    ("reserve", {"v": "fifty"}, None, "v: expected a number"),
    ("reserve", {"v": True}, None, "v: expected a number"),
    ("reserve", {"v": 150}, None, "outside 0..100"),
    ("reserve", {"v": -1}, None, "outside 0..100"),
    ("reserve", {"v": 20, "colour": "red"}, None, "unknown field 'colour'"),
    ("grid_start", {"w": "lots", "min": 5}, None, "expected integers"),
    ("grid_start", {"w": 99999999, "min": 5}, None, "power"),  # refused by the grid stage, as on the console
    ("grid_start", {"w": 1000, "min": 0}, None, "duration"),
    ("reboot", {}, None, "unknown command 'reboot'"),
    ("reserve", {"v": 20, "ts": None}, None, "ts missing"),
    ("reserve", {"v": 20, "ts": "now"}, None, "ts: expected a number"),
    ("reserve", {"v": 20, "ttl": 100000}, None, "ttl: expected an integer"),
    ("reserve", {"v": 20, "ts_age": 120}, None, "expired: sent 12"),  # 120 s, or 121 when the board is slow to take it
    ("reserve", {"v": 20, "ts_age": -3600}, None, "in the future"),
    ("grid_cancel", {}, None, "no grid event is running"),
    ("reserve", {"v": 20, "ts": 1e308}, None, "is not a time"),
    ("reserve", {"v": 1e308}, None, "outside 0..100"),
    ("reserve", {"v": {"nested": [1]}}, None, "v: expected a number"),
    ("grid_start", {"w": 10 ** 30, "min": 5}, None, "grid"),  # an integer the grid stage refuses
    ("reserve", None, b"\xff\xfe{\x80", "invalid JSON"),  # not UTF-8
    ("reserve", None, '{"v": 20, "ts": 1, "id": "\u00e9\u4e2d"}', "expired"),  # non-ASCII id
    ("reserve", {"v": 20, "id": 42}, None, "id: expected a string"),
]


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(rig):
    broker, vb, ha = rig
    s0 = state(ha)
    cfg0 = (vb.fs_dir / "config.json").read_bytes()
    grid_events0 = [p for p in ha.since(0, BASE + "event") if json.loads(p)["code"] == 9]
    for cmd, body, raw, why in BAD:
        if body is not None:
            body = dict(body)
            age = body.pop("ts_age", 0)
            body.setdefault("ts", time.time() - age)
            if body["ts"] is None:
                del body["ts"]
        r = command(ha, cmd, body, raw)
        assert r["ok"] is False and why in (r["reason"] or ""), (cmd, body, raw, r)
    # a stale command left retained on the broker: refused now, and again at every reconnect
    r = command(ha, "grid_start", {"w": 1000, "min": 5, "ts": time.time() - 600, "id": "old"}, retain=True)
    assert not r["ok"] and "expired" in r["reason"] and "retained" in r["reason"]
    # clean up: an empty retained payload deletes it (delivered once, empty: refused as invalid JSON)
    assert "invalid JSON" in command(ha, "grid_start", None, raw=b"", retain=True)["reason"]
    # nothing of all that changed anything: the saved configuration, the state, no grid event
    time.sleep(0.7)
    assert (vb.fs_dir / "config.json").read_bytes() == cfg0
    s_bad = state(ha)
    for k in ("reserve_cpct", "grid", "grid_w", "contactor", "n_faults"):
        assert s_bad[k] == s0[k], (k, s0[k], s_bad[k])
    # the same command twice (a repeat delivery): the second is refused
    body = {"v": s0["reserve_cpct"] / 100, "ts": time.time(), "id": "dup1"}
    assert command(ha, "reserve", body)["ok"]
    r = command(ha, "reserve", body)
    assert not r["ok"] and "duplicate" in r["reason"]
    # a flood: 40 commands at once; the board keeps at most 8 waiting, runs at most 4 a second
    t0 = time.monotonic()
    for i in range(40):
        ha.c.publish(BASE + "cmd/reserve", json.dumps({"v": 77, "ts": time.time(), "id": f"f{i}"}), qos=0)
    time.sleep(2.0)
    res = [json.loads(p) for p in ha.since(t0, BASE + "result")]
    flood = [r for r in res if not r["ok"] and "flood" in r["reason"]]
    done = [r for r in res if r["ok"]]
    assert flood and len(done) <= 8, res
    # put back what the flood may have set, through the same path
    assert command(ha, "reserve", {"v": s0["reserve_cpct"] / 100, "ts": time.time(), "id": "restore"})["ok"]
    time.sleep(0.7)
    s1 = state(ha)
    for k in ("reserve_cpct", "grid", "grid_w", "contactor", "n_faults"):
        assert s1[k] == s0[k], (k, s0[k], s1[k])
    cfg1 = json.loads((vb.fs_dir / "config.json").read_text().rsplit("\n", 2)[0])
    assert cfg1.get("grid_reserve_cpct", 3000) == s0["reserve_cpct"]
    assert [p for p in ha.since(0, BASE + "event") if json.loads(p)["code"] == 9] == grid_events0  # no grid event
    print(f"\nbad input: longest cycle {s1['loop_max_us']} us, longest MQTT call {s1['svc_max_us']} us")
    assert s1["overruns"] == 0, (s1["overruns"], s1["loop_max_us"], s1["svc_max_us"])


def test_broker_frozen_then_killed_and_restarted(rig):
    """A half-open broker (SIGSTOP: the TCP connection stays, nothing
    answers), then gone (SIGKILL), then back on the same port."""
    broker, vb, ha = rig
    s0 = state(ha)
    assert s0["overruns"] == 0
    closed0 = vb.plant.pack.physical & (OUT_NEG | OUT_POS)
    assert closed0 == OUT_NEG | OUT_POS
    errors0 = len(vb.plant.errors)
    import os
    import signal
    os.kill(broker.proc.pid, signal.SIGSTOP)
    time.sleep(4.0)  # keepalive 5 s: the board's ping (every 2.5 s) goes unanswered
    os.kill(broker.proc.pid, signal.SIGCONT)
    broker.kill()
    time.sleep(8.0)  # with the reconnect back-off, > 10 s down: MQTT_DOWN (a warning after 10 s)
    assert (vb.plant.pack.physical & (OUT_NEG | OUT_POS)) == closed0  # protection unaffected
    t_restart = time.monotonic()
    broker.start()
    got = wait_for(lambda: [t for t, tp, p, _ in list(ha.msgs) if t >= t_restart and tp == BASE + "availability"
                            and p == b"online"], 30)
    assert got, "the board did not come back online"
    vb.online_after_s = got[0] - t_restart
    assert wait_for(lambda: len(ha.since(got[0], BASE + "state")) >= 2, 5)
    s1 = state(ha)
    print(f"\nbroker outage: frozen 4 s, dead 8 s; online {vb.online_after_s:.1f} s after the restart; "
          f"overruns {s0['overruns']} -> {s1['overruns']}; longest cycle {s1['loop_max_us']} us, longest MQTT call {s1['svc_max_us']} us; "
          f"connects {s1['mqtt']['connects']}; plant link errors {len(vb.plant.errors) - errors0}")
    assert s1["overruns"] == s0["overruns"] == 0, s1
    assert s1["mqtt"]["connects"] == s0["mqtt"]["connects"] + 1
    assert len(vb.plant.errors) == errors0 and vb.crashes == 0
    assert (vb.plant.pack.physical & (OUT_NEG | OUT_POS)) == closed0
    assert s1["t"] > s0["t"] + 10000  # the firmware ticked on through the outage
    # the outage was a warning in the fault table: MQTT_DOWN raised, then cleared
    ev = [json.loads(p) for p in ha.since(got[0], BASE + "event")]
    names = vb.plant.link.hello["faults"]
    mq = names.index("MQTT_DOWN")
    assert wait_for(lambda: any(e["code"] == 2 and e["arg"] == mq for e in
                                [json.loads(p) for p in ha.since(got[0], BASE + "event")]), 5), ev
    assert any(e["code"] == 1 and e["arg"] == mq for e in
               [json.loads(p) for p in ha.since(got[0], BASE + "event")])  # raised while away, sent on return


def test_last_will_says_offline_when_the_board_dies(rig):
    broker, vb, ha = rig
    t0 = time.monotonic()
    vb.proc.kill()  # the board resets (the supervisor starts it again, as a board restarts)
    off = wait_for(lambda: [t for t, tp, p, _ in list(ha.msgs) if t >= t0 and tp == BASE + "availability"
                            and p == b"offline"], 10)
    assert off, "no last will"
    on = wait_for(lambda: [t for t, tp, p, _ in list(ha.msgs) if t >= off[0] and tp == BASE + "availability"
                           and p == b"online"], 20)
    assert on, "not online again after the reset"

