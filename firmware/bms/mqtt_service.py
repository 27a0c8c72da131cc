# MQTT between ticks: telemetry, Home Assistant discovery and remote
# commands, on boards with a network (ESP32, Pico W; the virtual board uses
# the host's network).
#
# The client is chumicro-mqtt (non-blocking MQTT 3.1.1, MIT, installed from
# PyPI by name; see requirements-mplib.txt). It never waits: the TCP connect
# is polled, one recv and one packet send per handle(), keepalive pings and
# reconnects (back-off 1 s doubling to 60 s) are its own timers. service()
# calls handle() at most HANDLE_MAX times, publishes what is due and runs at
# most CMD_PER_CALL commands, so one call costs a bounded time whatever the
# network does.
#
# Topics (node = board.json mqtt.node):
#   bms/<node>/availability  online / offline (retained; the offline is the last will)
#   bms/<node>/state         one JSON object at mqtt.state_ms
#   bms/<node>/cells         cell voltages (mV) and balancing, at the same rate
#   bms/<node>/faults        {"active": [names]} on a change and with every state
#   bms/<node>/event         each event of the log as it happens
#   bms/<node>/cmd/<c>       commands (JSON); <c> in COMMANDS
#   bms/<node>/result        one reply per command: id, cmd, ok, reason, reply
# Discovery: homeassistant/<component>/bms_<node>/<object>/config, retained,
# sent again when Home Assistant says "online" on homeassistant/status.
#
# Commands go through Console.execute (the console's own path and checks);
# each carries ts (unix seconds) and optionally ttl (s) and id, and is
# refused once ts + ttl has passed, so a delayed or stale retained command
# is never executed late.
# Production mode (board.json "mode": "production"): a command is
# {"cmd": "<the command JSON, with ts, ttl and a counter ctr>", "mac": "<hex>"}
# with MAC = HMAC-SHA256(pack key, "bms-mqtt|" + name + "|" + cmd) (bms/auth.py,
# host_tools/auth.py sign_mqtt); ctr must be above the last accepted one, so
# a captured command is refused even within its ttl and after a reboot.
# Broker credentials alone change nothing; the telemetry stays open.
import json
import time
from micropython import const
from bms import VERSION
from bms import faults as F
from bms import signals as S
from bms.state import EVENTS, EV_REMOTE_CMD

HANDLE_MAX = const(6)  # client.handle() calls per service(): at most one packet sent each
DISC_PER_CALL = const(2)  # discovery configs queued per call
CMD_PER_CALL = const(2)  # commands taken per call, of them at most one executed
EV_PER_CALL = const(4)  # events published per call
INBOX = const(8)  # commands waiting; more is a flood and is refused
CMD_RATE = const(4)  # commands run per second at most
MAX_PAYLOAD = const(256)  # bytes; the client's receive buffer, larger is refused
TTL_DEFAULT_S = const(30)
TTL_MAX_S = const(300)
SKEW_S = const(30)  # a command stamped further ahead than this is refused
RECENT = const(8)  # command ids remembered against a repeat

# Commands: name, fields besides ts/ttl/id. The index is the EV_REMOTE_CMD arg.
COMMANDS = (
    ("reserve", ("v",)),
    ("grid_start", ("w", "min")),
    ("grid_cancel", ()),
    ("clear", ()),
)
TS_TEMPLATE = '"ts": {{ now().timestamp() }}, "ttl": 30'

# Home Assistant entities (per-entity discovery), data only:
# component, object id, name, device_class, state_class, unit, topic, value template.
# Topics: s state, c cells, f faults. Units and classes: HA developer docs
# core/entity/sensor (voltage V/mV, current A, power W, battery %, temperature
# degC, energy Wh with total_increasing).
V = "value_json."
SENSORS = (
    ("pack_voltage", "Pack voltage", "voltage", "measurement", "V", "s", "{{ " + V + "pack_mv / 1000 }}"),
    ("current", "Current", "current", "measurement", "A", "s", "{{ " + V + "i_ma / 1000 }}"),
    ("power", "Power", "power", "measurement", "W", "s", "{{ " + V + "p_w }}"),
    ("soc", "State of charge", "battery", "measurement", "%", "s",
     "{{ " + V + "soc_cpct / 100 if " + V + "soc_cpct >= 0 else None }}"),
    ("temp_min", "Cell temperature min", "temperature", "measurement", "\u00b0C", "s", "{{ " + V + "t_min_dc / 10 }}"),
    ("temp_max", "Cell temperature max", "temperature", "measurement", "\u00b0C", "s", "{{ " + V + "t_max_dc / 10 }}"),
    ("coolant_in", "Coolant in", "temperature", "measurement", "\u00b0C", "s", "{{ " + V + "cool_in_dc / 10 }}"),
    ("coolant_out", "Coolant out", "temperature", "measurement", "\u00b0C", "s", "{{ " + V + "cool_out_dc / 10 }}"),
    ("cell_min", "Cell voltage min", "voltage", "measurement", "V", "s", "{{ " + V + "cell_min_mv / 1000 }}"),
    ("cell_max", "Cell voltage max", "voltage", "measurement", "V", "s", "{{ " + V + "cell_max_mv / 1000 }}"),
    ("cell_spread", "Cell voltage spread", "voltage", "measurement", "mV", "s", "{{ " + V + "spread_mv }}"),
    ("ccl", "Charge current limit", "current", "measurement", "A", "s", "{{ " + V + "ccl_ma / 1000 }}"),
    ("dcl", "Discharge current limit", "current", "measurement", "A", "s", "{{ " + V + "dcl_ma / 1000 }}"),
    ("energy_charged", "Energy charged", "energy", "total_increasing", "Wh", "s", "{{ " + V + "e_in_wh }}"),
    ("energy_discharged", "Energy discharged", "energy", "total_increasing", "Wh", "s", "{{ " + V + "e_out_wh }}"),
    ("grid_exported", "Grid support exported", "energy", "total_increasing", "Wh", "s", "{{ " + V + "grid_wh }}"),
)

CONTACTORS = ["open", "precharge", "closing", "closed", "locked"]
# (component, object id, config); a string "@x" is the topic bms/<node>/x
EXTRAS = (
    ("sensor", "contactors", {"name": "Contactors", "device_class": "enum", "options": CONTACTORS,
                              "state_topic": "@state",
                              "value_template": "{{ " + str(CONTACTORS).replace(" ", "") + "[" + V + "contactor] }}"}),
    ("binary_sensor", "grid_event", {"name": "Grid event", "device_class": "running", "state_topic": "@state",
                                     "value_template": "{{ 'ON' if " + V + "grid else 'OFF' }}"}),
    ("sensor", "last_result", {"name": "Last command result", "entity_category": "diagnostic", "state_topic": "@result",
                               "value_template": "{{ value_json.cmd }}: {{ 'ok' if value_json.ok else value_json.reason }}"}),
)
# the commands; `clear` last: announced only when the board config allows it
CONTROLS = (
    ("number", "reserve", {"name": "Grid reserve", "command_topic": "@cmd/reserve", "state_topic": "@state",
                           "value_template": "{{ " + V + "reserve_cpct / 100 }}", "min": 0, "max": 100, "step": 1,
                           "unit_of_measurement": "%", "mode": "box",
                           "command_template": '{"v": {{ value }}, ' + TS_TEMPLATE + "}"}),
    ("text", "grid_start", {"name": "Start grid event (W minutes)", "command_topic": "@cmd/grid_start",
                            "pattern": "^[0-9]+ [0-9]+$", "max": 16,
                            "command_template": '{"w": {{ value.split()[0] }}, "min": {{ value.split()[1] }}, '
                                                + TS_TEMPLATE + "}"}),
    ("button", "grid_cancel", {"name": "Cancel grid event", "command_topic": "@cmd/grid_cancel",
                               "command_template": "{" + TS_TEMPLATE + "}"}),
    ("button", "clear", {"name": "Clear latched faults", "command_topic": "@cmd/clear",
                         "command_template": "{" + TS_TEMPLATE + "}"}),
)


class MqttConfigError(ValueError):
    pass


def _bad(path, msg):
    raise MqttConfigError("board.mqtt." + path + ": " + msg)


def _ipv4(s):
    parts = s.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or len(p) > 3 or int(p) > 255:
            return False
    return True


def _is_int(v):
    return type(v) is int and v is not True and v is not False


def check_config(d):
    """The board config's "mqtt" section, checked on the board as the host
    does (host_tools/boardcfg.py): returns a dict with defaults filled in,
    or raises MqttConfigError naming the field. Secrets are never put into
    a message."""
    if not isinstance(d, dict):
        _bad("", "expected an object")
    known = ("node", "wifi", "broker", "discovery_prefix", "state_ms", "keepalive_s", "remote_clear", "ntp")
    for k in d:
        if k not in known:
            _bad(k, "unknown field (known: " + ", ".join(known) + ")")
    out = {}
    node = d.get("node")
    if not isinstance(node, str) or not 1 <= len(node) <= 32 or not all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in node):
        _bad("node", "expected 1-32 characters a-z, 0-9, _, got " + repr(node))
    out["node"] = node
    w = d.get("wifi")
    if w is not None:
        if not isinstance(w, dict):
            _bad("wifi", "expected an object")
        for k in w:
            if k not in ("ssid", "password"):
                _bad("wifi." + k, "unknown field")
        if not isinstance(w.get("ssid"), str) or not 1 <= len(w["ssid"]) <= 32:
            _bad("wifi.ssid", "expected a string of 1-32 characters")
        if not isinstance(w.get("password", ""), str) or len(w.get("password", "")) > 64:
            _bad("wifi.password", "expected a string of at most 64 characters")
    out["wifi"] = w
    b = d.get("broker")
    if not isinstance(b, dict):
        _bad("broker", "missing or not an object")
    for k in b:
        if k not in ("host", "port", "user", "password"):
            _bad("broker." + k, "unknown field")
    host = b.get("host")
    if not isinstance(host, str) or not _ipv4(host):
        # a name would need a DNS lookup, and getaddrinfo() blocks
        _bad("broker.host", "expected an IPv4 address (a host name needs a blocking DNS lookup), got " + repr(host))
    port = b.get("port", 1883)
    if not _is_int(port) or not 1 <= port <= 65535:
        _bad("broker.port", "expected an integer 1..65535, got " + repr(port))
    for k in ("user", "password"):
        v = b.get(k)
        if v is not None and (not isinstance(v, str) or len(v) > 64):
            _bad("broker." + k, "expected a string of at most 64 characters")
    if ("password" in b) and ("user" not in b):
        _bad("broker.password", "a password needs broker.user")
    out["host"] = host
    out["port"] = port
    out["user"] = b.get("user")
    out["password"] = b.get("password")
    pre = d.get("discovery_prefix", "homeassistant")
    if not isinstance(pre, str) or not 1 <= len(pre) <= 32 or "+" in pre or "#" in pre:
        _bad("discovery_prefix", "expected a topic word of 1-32 characters, got " + repr(pre))
    out["prefix"] = pre
    for k, lo, hi, dflt in (("state_ms", 200, 3600000, 1000), ("keepalive_s", 5, 600, 30)):
        v = d.get(k, dflt)
        if not _is_int(v) or not lo <= v <= hi:
            _bad(k, "expected an integer %d..%d, got %r" % (lo, hi, v))
        out[k] = v
    rc = d.get("remote_clear", False)
    if rc is not True and rc is not False:
        _bad("remote_clear", "expected true or false, got " + repr(rc))
    out["remote_clear"] = rc
    ntp = d.get("ntp")
    if ntp is not None and (not isinstance(ntp, str) or not _ipv4(ntp)):
        _bad("ntp", "expected an IPv4 address, got " + repr(ntp))
    out["ntp"] = ntp
    return out


class _Collect:
    """A console port that keeps the reply lines of one command."""

    def __init__(self):
        self.lines = []

    def write(self, s):
        for ln in s.split("\n"):
            if ln:
                self.lines.append(ln)


class MqttService:
    """app: the App; console: its Console (the command path); cfg: from
    check_config(); board_name: for the device block; clock: wall() gives
    unix seconds or None while unknown, service(now_ms) keeps it (bms/sntp.py); wlan: a network.WLAN station or None (the
    virtual board: the host's network); loop: the main loop (its
    `overruns` is published) or None."""

    def __init__(self, app, console, cfg, board_name, clock, wlan=None, loop=None, client_cls=None):
        self.app = app
        self.console = console
        self.cfg = cfg
        self.board_name = board_name
        self.clock = clock
        self.wlan = wlan
        self.loop = loop
        self.client_cls = client_cls
        base = "bms/" + cfg["node"] + "/"
        self.base = base
        self.t_avail = base + "availability"
        self.t_state = base + "state"
        self.t_result = base + "result"
        self.client = None
        self.up = False
        self.last_state = None
        self.cells_due = False
        self.disc_i = -1  # next discovery entity; -1: none pending
        self.inbox = []
        self.flooded = 0
        self.recent = []
        self.rate_t = 0
        self.rate_n = 0
        st = app.state
        self.ev_sent = (st.ev_total - st.ev_count) & 0x3FFFFFFF  # the boot's events too
        self.faults_seen = bytearray(F.N_FAULTS)
        self.faults_dirty = True
        # counters (published in the state, read by tests and the bench)
        self.connects = 0
        self.published = 0
        self.dropped = 0  # publishes refused by a full send queue
        self.commands = 0
        self.refused = 0
        self.errors = 0
        self.last_error = None
        self.wifi_t = None

    # -- the one entry point -----------------------------------------------
    def service(self, now_ms):
        try:
            self._service(now_ms)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: a failing service is a warning, never an exception into the loop
            self.errors += 1
            self.last_error = repr(e)
            c = self.client
            self._set_up(c is not None and c.state == "connected")

    def _service(self, now_ms):
        self.clock.service(now_ms)
        if self.client is None:
            if not self._network(now_ms):
                self._set_up(False)
                return
            self._build()
        c = self.client
        for _ in range(HANDLE_MAX):
            c.handle(now_ms)
            if not (c.io_interest(now_ms) & 2):  # nothing left to send
                break
        up = c.state == "connected"
        if up != self.up:
            self._set_up(up)
            if up:
                self.connects += 1
                self._pub(self.t_avail, "online", True)
                self.disc_i = 0
                self.faults_dirty = True
                self.last_state = None
        if not up:
            return
        self._commands(now_ms)
        self._discovery()
        self._telemetry(now_ms)
        self._events()

    def _set_up(self, up):
        self.up = up
        self.app.state.sig[S.MQTT_DOWN] = 0 if up else 1

    def _network(self, now_ms):
        w = self.wlan
        if w is None:
            return True
        if w.isconnected():
            return True
        # connect() returns at once on ESP32 and rp2; try again every 20 s
        if self.wifi_t is None or time.ticks_diff(now_ms, self.wifi_t) >= 20000:
            self.wifi_t = now_ms
            wc = self.cfg["wifi"]
            w.active(True)
            w.connect(wc["ssid"], wc.get("password", ""))
        return False

    def _build(self):
        cls = self.client_cls
        if cls is None:
            from chumicro_mqtt import MQTTClient as cls
        from chumicro_sockets.sockets_factory import fixed_connector_factory
        cfg = self.cfg
        c = cls(transport_factory=fixed_connector_factory(cfg["host"], cfg["port"]),
                client_id="bms-" + cfg["node"], keep_alive_seconds=cfg["keepalive_s"],
                username=cfg["user"], password=cfg["password"],
                will_topic=self.t_avail, will_message=b"offline", will_qos=1, will_retain=True,
                rx_buffer_size=MAX_PAYLOAD, when_disconnected="raise", max_tx_queue_size=24)
        c.on_message = self._on_message
        c.on_oversized = self._on_oversized
        c.subscribe(self.base + "cmd/+", 0)
        c.subscribe(cfg["prefix"] + "/status", 0)
        c.connect()
        self.client = c

    def _pub(self, topic, payload, retain=False):
        try:
            self.client.publish(topic, payload, retain=retain)
            self.published += 1
            return True
        except Exception:  # noqa: MQTTBackpressureError or not connected: drop, never wait
            self.dropped += 1
            return False

    # -- inbound -------------------------------------------------------------
    def _on_message(self, topic, payload):
        if topic == self.cfg["prefix"] + "/status":
            if bytes(payload) == b"online":
                self.disc_i = 0  # Home Assistant restarted: announce again
            return
        if len(self.inbox) >= INBOX:
            self.flooded += 1
            return
        self.inbox.append((topic, bytes(payload)))

    def _on_oversized(self, length, topic):
        if len(self.inbox) >= INBOX:
            self.flooded += 1
            return
        self.inbox.append((topic, length))  # an int: the payload was too long to keep

    def _commands(self, now_ms):
        if self.flooded:
            n = self.flooded
            self.flooded = 0
            self.refused += n
            self._result(None, "*", "flood: %d commands dropped (more than %d waiting)" % (n, INBOX), None)
        for _ in range(CMD_PER_CALL):
            if not self.inbox:
                return
            topic, payload = self.inbox.pop(0)
            try:
                if self._command(topic, payload, now_ms):
                    return  # one executed command per call: a `config set` validates, saves and rebuilds
            except Exception as e:  # noqa: a bug here must not cost the connection; say so
                self.errors += 1
                self.refused += 1
                self._result(None, "*", "internal error: " + repr(e)[:80], None)

    def _command(self, topic, payload, now_ms):
        name = topic[len(self.base) + 4:] if topic.startswith(self.base + "cmd/") else topic
        idx = -1
        for i in range(len(COMMANDS)):
            if COMMANDS[i][0] == name:
                idx = i
        cid = None
        line = None
        reason = None
        if idx < 0:
            reason = "unknown command %r (known: %s)" % (name[:40], ", ".join(c[0] for c in COMMANDS))
        elif type(payload) is int:
            reason = "payload of %d bytes is longer than %d" % (payload, MAX_PAYLOAD)
        elif len(payload) > MAX_PAYLOAD:
            reason = "payload of %d bytes is longer than %d" % (len(payload), MAX_PAYLOAD)
        else:
            try:
                msg = json.loads(payload)
            except ValueError:
                msg = None
                reason = "invalid JSON"
            if reason is None and not isinstance(msg, dict):
                reason = "expected a JSON object"
            ctr = None
            if reason is None and self.console.root is not None:
                msg, reason = self._signed(name, msg, now_ms)
                if msg is not None:
                    ctr = msg.pop("_ctr")
            if reason is None:
                cid = msg.get("id")
                if cid is not None and (not isinstance(cid, str) or len(cid) > 40):
                    cid = None
                    reason = "id: expected a string of at most 40 characters"
            if reason is None:
                reason = self._fresh(msg, COMMANDS[idx], now_ms)
            if reason is None:
                line, reason = self._line(idx, msg)
            if reason is None:
                key = cid if cid is not None else name + repr(msg["ts"])
                if key in self.recent:
                    reason = "duplicate: this command was already handled"
                else:
                    self.recent.append(key)
                    if len(self.recent) > RECENT:
                        self.recent.pop(0)
        if reason is None:
            # rate limit after the checks, so refused junk cannot starve real commands
            if time.ticks_diff(now_ms, self.rate_t) >= 1000:
                self.rate_t = now_ms
                self.rate_n = 0
            self.rate_n += 1
            if self.rate_n > CMD_RATE:
                reason = "flood: more than %d commands per second" % CMD_RATE
        out = None
        ran = reason is None
        if ran:
            if ctr is not None:
                self._counter_used(ctr)
            out = _Collect()
            reason = self.console.execute(line, now_ms, out, ctr is not None)
        st = self.app.state
        st.event(now_ms, EV_REMOTE_CMD, idx if idx >= 0 else 0xFFFF, 1 if reason is None else 0)
        if reason is None:
            self.commands += 1
        else:
            self.refused += 1
        self._result(cid, name[:40], reason, out.lines if out is not None else None)
        return ran

    def _signed(self, name, msg, now_ms):
        # the check is in bms/auth.py, loaded for it and dropped after
        import sys
        from bms.config import drop
        loaded = [] if "bms.auth" in sys.modules else ["bms.auth"]
        try:
            from bms.auth import mqtt_open
            return mqtt_open(self.console, name, msg, now_ms)
        finally:
            mqtt_open = None
            drop(loaded)

    def _counter_used(self, ctr):
        import sys
        from bms.config import drop
        loaded = [] if "bms.auth" in sys.modules else ["bms.auth"]
        try:
            from bms.auth import mqtt_accept
            mqtt_accept(self.console, ctr)
        finally:
            mqtt_accept = None
            drop(loaded)

    def _fresh(self, msg, spec, now_ms):
        for k in msg:
            if k not in ("ts", "ttl", "id") and k not in spec[1]:
                return "unknown field %r" % k[:40] if isinstance(k, str) else "bad field"
        ts = msg.get("ts")
        if ts is None:
            return "ts missing: every command carries its time (unix seconds), so a late one can be refused"
        if type(ts) not in (int, float) or ts is True or ts is False:
            return "ts: expected a number (unix seconds)"
        if not 0 < ts < 4102444800:  # 2100-01-01 (also rules out inf and nan)
            return "ts: %s is not a time (unix seconds)" % _short(ts)
        ttl = msg.get("ttl", TTL_DEFAULT_S)
        if not _is_int(ttl) or not 1 <= ttl <= TTL_MAX_S:
            return "ttl: expected an integer 1..%d s" % TTL_MAX_S
        wall = self.clock.wall()
        if wall is None:
            return "no wall clock yet (SNTP): commands are refused until the time is known"
        age = wall - int(ts)
        if age > ttl:
            return "expired: sent %d s ago, ttl %d s (a delayed or stale retained command)" % (age, ttl)
        if -age > SKEW_S:
            return "ts is %d s in the future (clocks disagree by more than %d s)" % (-age, SKEW_S)
        return None

    def _line(self, idx, msg):
        """The console line for a checked command, or (None, reason)."""
        name = COMMANDS[idx][0]
        if name == "reserve":
            v = msg.get("v")
            if type(v) not in (int, float) or v is True or v is False:
                return None, "v: expected a number (percent), got %s" % _short(v)
            if not 0 <= v <= 100:
                return None, "v: %s %% is outside 0..100" % _short(v)
            return "config set grid_reserve_cpct %d" % int(v * 100 + 0.5), None
        if name == "grid_start":
            w = msg.get("w")
            m = msg.get("min")
            if not _is_int(w) or not _is_int(m):
                return None, "w and min: expected integers (watts, minutes), got %s %s" % (_short(w), _short(m))
            return "grid start %d %d" % (w, m), None
        if name == "grid_cancel":
            return "grid cancel", None
        if not self.cfg["remote_clear"]:
            return None, "remote clear is off in the board config (mqtt.remote_clear)"
        return "clear", None

    def _result(self, cid, name, reason, lines):
        self._pub(self.t_result, json.dumps({"id": cid, "cmd": name, "ok": reason is None, "reason": reason,
                                             "reply": lines or []}))

    # -- outbound ------------------------------------------------------------
    def _telemetry(self, now_ms):
        if self.cells_due:
            self.cells_due = False
            self._cells()
            return
        st = self.app.state
        changed = self.faults_dirty
        for i in range(F.N_FAULTS):
            if st.fault_active[i] != self.faults_seen[i]:
                self.faults_seen[i] = st.fault_active[i]
                changed = True
        due = self.last_state is None or time.ticks_diff(now_ms, self.last_state) >= self.cfg["state_ms"]
        if changed or due:
            self.faults_dirty = False
            names = [F.NAMES[i] for i in range(F.N_FAULTS) if st.fault_active[i]]
            self._pub(self.base + "faults", json.dumps({"active": names}), True)
        if due:
            self.last_state = now_ms
            self._state(now_ms)
            self.cells_due = True  # next call: spreads the work

    def _state(self, now_ms):
        st = self.app.state
        sig = st.sig
        mv = sig[S.PACK_MV]
        ma = sig[S.CURRENT_MA]
        loop = self.loop
        self._pub(self.t_state, (
            '{"t":%d,"pack_mv":%d,"i_ma":%d,"p_w":%d,"soc_cpct":%d,"cell_min_mv":%d,"cell_max_mv":%d,"spread_mv":%d,'
            '"t_min_dc":%d,"t_max_dc":%d,"cool_in_dc":%d,"cool_out_dc":%d,"ccl_ma":%d,"dcl_ma":%d,"e_in_wh":%d,'
            '"e_out_wh":%d,"grid":%d,"grid_w":%d,"grid_wh":%d,"reserve_cpct":%d,"contactor":%d,"n_faults":%d,'
            '"overruns":%d,"loop_max_us":%d,"svc_max_us":%d,"mqtt":{"connects":%d,"dropped":%d,"commands":%d,"refused":%d,"errors":%d}}') % (
            now_ms, mv, ma, (mv // 10) * (ma // 10) // 10000, st.soc_cpct, sig[S.CELL_MIN_MV], sig[S.CELL_MAX_MV],
            sig[S.CELL_SPREAD_MV], sig[S.TEMP_MIN_DC], sig[S.TEMP_MAX_DC], sig[S.COOLANT_IN_DC],
            sig[S.COOLANT_OUT_DC], st.ccl_ma, st.dcl_ma, st.energy_in_wh, st.energy_out_wh, st.grid_active,
            st.grid_power_w, st.grid_wh_total, self.app.cfg.grid_reserve_cpct, st.contactor_state, st.n_active,
            loop.overruns if loop is not None else -1, getattr(loop, "max_us", -1), getattr(loop, "svc_max_us", -1), self.connects, self.dropped, self.commands, self.refused,
            self.errors))

    def _cells(self):
        st = self.app.state
        n = st.n_cells
        self._pub(self.base + "cells", '{"mv":[%s],"bal":[%s]}' % (
            ",".join(str(st.cell_mv[i]) for i in range(n)), ",".join(str(st.balance_mask[i]) for i in range(n))))

    def _events(self):
        st = self.app.state
        new = (st.ev_total - self.ev_sent) & 0x3FFFFFFF
        if new > EVENTS:  # the ring went round while the broker was away
            self.ev_sent = (st.ev_total - EVENTS) & 0x3FFFFFFF
            new = EVENTS
        ev = st.events
        n = 0
        while n < new and n < EV_PER_CALL:
            i = (st.ev_head - new + n) % EVENTS * 4
            if not self._pub(self.base + "event", '{"n":%d,"t":%d,"code":%d,"arg":%d,"value":%d}' % (
                    (self.ev_sent + n) & 0x3FFFFFFF, ev[i], ev[i + 1], ev[i + 2], ev[i + 3])):
                break
            n += 1
        self.ev_sent = (self.ev_sent + n) & 0x3FFFFFFF

    # -- Home Assistant discovery ---------------------------------------------
    def _entity_count(self):
        return len(SENSORS) + len(EXTRAS) + F.N_FAULTS + len(CONTROLS) - (0 if self.cfg["remote_clear"] else 1)

    def _entity(self, i):
        """Entity i as (component, object id, config without the common
        blocks), built when it is sent: the tables stay constants, so RAM
        holds one config at a time."""
        b = self.base
        if i < len(SENSORS):
            obj, name, dc, sc, unit, t, tpl = SENSORS[i]
            return "sensor", obj, {"name": name, "device_class": dc, "state_class": sc, "unit_of_measurement": unit,
                                   "state_topic": b + "state", "value_template": tpl}
        i -= len(SENSORS)
        if i < len(EXTRAS):
            comp, obj, body = EXTRAS[i]
        else:
            i -= len(EXTRAS)
            if i < F.N_FAULTS:
                nm = F.NAMES[i]
                return "binary_sensor", "fault_" + nm.lower(), {
                    "name": "Fault " + nm, "device_class": "problem", "entity_category": "diagnostic",
                    "state_topic": b + "faults",
                    "value_template": "{{ 'ON' if '" + nm + "' in " + V + "active else 'OFF' }}"}
            comp, obj, body = CONTROLS[i - F.N_FAULTS]
        d = {}
        for k in body:
            v = body[k]
            d[k] = b + v[1:] if isinstance(v, str) and v[:1] == "@" else v  # "@x": the topic bms/<node>/x
        return comp, obj, d

    def _discovery(self):
        if self.disc_i < 0:
            return
        node = self.cfg["node"]
        for _ in range(DISC_PER_CALL):
            if self.disc_i >= self._entity_count():
                self.disc_i = -1
                return
            comp, obj, body = self._entity(self.disc_i)
            uid = "bms_" + node + "_" + obj
            d = body
            d["unique_id"] = uid
            d["default_entity_id"] = comp + "." + uid
            d["availability_topic"] = self.t_avail
            d["device"] = {"identifiers": ["bms_" + node], "name": "BMS " + node, "manufacturer": "MicroPython BMS",
                           "model": self.board_name, "sw_version": VERSION}
            d["origin"] = {"name": "micropython-bms", "sw_version": VERSION}
            if not self._pub(self.cfg["prefix"] + "/" + comp + "/bms_" + node + "/" + obj + "/config", json.dumps(d), True):
                return  # the send queue is full: the rest next call
            self.disc_i += 1


def _short(v):
    s = repr(v)
    return s if len(s) <= 20 else s[:20] + "..."


def build(board, app, console, loop=None):
    """The service for a board config with an "mqtt" section, else None.
    Raises MqttConfigError (a ValueError) for a bad section."""
    d = board.get("mqtt")
    if d is None:
        return None
    cfg = check_config(d)
    import sys
    # Loaded here, at boot: importing (from source, compiling) in the first
    # service() call would hold up a tick by tens of ms.
    from chumicro_mqtt import MQTTClient
    import chumicro_sockets
    import chumicro_sockets.sockets_factory  # noqa: F401
    chumicro_sockets._get_adapter()  # the runtime's socket adapter, otherwise loaded at the first connect
    from bms.sntp import Sntp, UnixClock
    wlan = None
    clock = UnixClock()
    if sys.platform != "linux":  # a board: a WiFi station, and wall time from SNTP
        import network
        wlan = network.WLAN(network.STA_IF)
        clock = Sntp(cfg["ntp"] or cfg["host"])  # many home brokers (a Pi) serve NTP too: say mqtt.ntp if not
    return MqttService(app, console, cfg, board.get("board", "?"), clock, wlan, loop, MQTTClient)
