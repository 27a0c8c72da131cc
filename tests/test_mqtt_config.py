"""The board config's "mqtt" section: the host (board_configs/schema.json
through host_tools/boardcfg.py) and the firmware (bms.mqtt_service.
check_config, under MicroPython) refuse the same bad sections, each naming
the field, and never print a secret. A bad section on a board is a boot
warning and no MQTT, never a reason not to protect."""
from __future__ import annotations

import copy
import json

import pytest

from host_tools.boardcfg import BoardConfigError, load_board_config
from tests.conftest import ROOT, mp_run

SECRET = "hunter2-wifi-Zq9"
BROKER_SECRET = "broker-pw-Kx4"
GOOD = {"node": "garage_pack", "wifi": {"ssid": "home", "password": SECRET},
        "broker": {"host": "192.168.1.10", "port": 1883, "user": "bms", "password": BROKER_SECRET},
        "state_ms": 1000, "keepalive_s": 30, "remote_clear": False}


def _set(d, path, value):
    d = copy.deepcopy(d)
    keys = path.split(".")
    t = d
    for k in keys[:-1]:
        t = t[k]
    if value is DELETE:
        del t[keys[-1]]
    else:
        t[keys[-1]] = value
    return d


DELETE = object()
# (field changed, new value, field the error must name)
BAD = [
    ("node", "Garage Pack", "node"),
    ("node", "", "node"),
    ("node", DELETE, "node"),
    ("broker", DELETE, "broker"),
    ("broker.host", "mqtt.local", "broker.host"),  # a name needs a blocking DNS lookup
    ("broker.host", "300.1.1.1", "broker.host"),
    ("broker.port", 0, "broker.port"),
    ("broker.port", "1883", "broker.port"),
    ("broker.port", True, "broker.port"),
    ("broker.password", BROKER_SECRET * 10, "broker.password"),
    ("broker.user", DELETE, "broker"),  # a password without a user
    ("broker.tls", True, "broker"),
    ("wifi.ssid", "", "wifi.ssid"),
    ("wifi.password", SECRET * 10, "wifi.password"),
    ("state_ms", 50, "state_ms"),
    ("keepalive_s", 1, "keepalive_s"),
    ("remote_clear", "yes", "remote_clear"),
    ("ntp", "pool.ntp.org", "ntp"),
    ("colour", "red", "mqtt"),
]


def _board(mqtt) -> dict:
    b = json.loads((ROOT / "board_configs" / "picow_bq76952.json").read_text())
    b["mqtt"] = mqtt
    return b


def _firmware_check(sections: list) -> list:
    code = ("import json\nfrom bms.mqtt_service import check_config, MqttConfigError\n"
            "from bms import board_start\n"
            f"out = []\nfor d in json.loads({json.dumps(json.dumps(sections))}):\n"
            "    try:\n        check_config(d)\n        r = None\n"
            "    except MqttConfigError as e:\n        r = str(e)\n"
            "    svc, warn = board_start._services({'mqtt': d}, None, None) if r else ((), [])\n"
            "    out.append([r, len(svc), warn])\n"
            "print(json.dumps(out))\n")
    r = mp_run(code)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_good_section_passes_both(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(_board(GOOD)))
    load_board_config(p)
    assert _firmware_check([GOOD]) == [[None, 0, []]]


def test_bad_sections_are_refused_by_host_and_firmware_naming_the_field(tmp_path):
    sections = []
    for field, value, names in BAD:
        sections.append(_set(GOOD, field, value) if "." in field or field in GOOD else dict(GOOD, **{field: value}))
    fw = _firmware_check(sections)
    for (field, value, names), sec, (fw_err, n_svc, warn) in zip(BAD, sections, fw):
        p = tmp_path / "b.json"
        p.write_text(json.dumps(_board(sec)))
        with pytest.raises(BoardConfigError) as e:
            load_board_config(p)
        host = str(e.value)
        # the field's path, or its parent's with the field's name ("'node' is a required property")
        assert f"mqtt.{names}" in host or ("mqtt" in host and field.split(".")[-1] in host), (field, host)
        assert fw_err and fw_err.startswith("board.mqtt." + ("" if names == "mqtt" else names)), (field, fw_err)
        # the board starts without MQTT and says why in its boot line
        assert n_svc == 0 and warn == ["mqtt: not started: " + fw_err]
        for text in (host, fw_err):
            assert SECRET not in text and BROKER_SECRET not in text, text


def test_shipped_board_configs_still_valid():
    for p in sorted((ROOT / "board_configs").glob("*.json")):
        if p.name != "schema.json":
            load_board_config(p)


def test_flash_builds_the_client_for_each_board_arch(tmp_path):
    """`bmsctl flash` puts the client under lib/ as .mpy when the board
    config has an "mqtt" section (the x64 build is the one the virtual
    board runs in tests/test_mqtt.py)."""
    from host_tools.flash import build_lib
    for arch in ("armv6m", "xtensawin"):
        files = build_lib(arch, tmp_path / arch)
        assert {f.parts[1] for f in files} == {"chumicro_mqtt", "chumicro_sockets", "chumicro_timing"}
        assert all((tmp_path / arch / f).read_bytes()[:1] == b"M" for f in files)  # .mpy header


def test_sntp_gives_the_board_wall_time_without_blocking():
    """bms/sntp.py (a board's clock for command expiry) against a small SNTP
    server here (RFC 4330 reply: mode 4, stratum 2, transmit timestamp):
    no time before the answer, then the server's time; a server that never
    answers leaves it unknown and costs nothing but polls."""
    import socket
    import struct
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(10)
    port = srv.getsockname()[1]
    T = 1_800_000_000  # unix seconds the server claims

    def serve():
        try:
            req, addr = srv.recvfrom(64)
        except OSError:
            return
        if len(req) == 48 and req[0] & 7 == 3:
            rep = bytearray(48)
            rep[0], rep[1] = 0x24, 2
            struct.pack_into(">I", rep, 40, T + 2208988800)
            srv.sendto(rep, addr)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    r = mp_run("import time\nfrom bms.sntp import Sntp\n"
               f"s = Sntp('127.0.0.1', {port})\nq = Sntp('127.0.0.1', {silent.getsockname()[1]})\n"
               "before = s.wall()\nt_end = time.ticks_add(time.ticks_ms(), 3000)\n"
               "while s.wall() is None and time.ticks_diff(t_end, time.ticks_ms()) > 0:\n"
               "    s.service(time.ticks_ms())\n    q.service(time.ticks_ms())\n    time.sleep_ms(5)\n"
               "print(before, s.wall(), q.wall())\n")
    th.join(5)
    srv.close()
    silent.close()
    assert r.returncode == 0, r.stderr
    before, wall, other = r.stdout.split()
    assert before == "None" and other == "None"
    assert abs(int(wall) - T) <= 1
