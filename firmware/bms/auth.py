# The production lock (board.json "mode": "production"): the console's
# `auth`, `logout`, `key rotate` and `repl` commands and the check of a
# signed MQTT command. bms/console.py loads this module for one of them and
# drops it after, like bms/console_cmds.py; what must outlive a command
# (challenge, session end, failed attempts, MQTT counter) lives on the
# Console, a few ints and bytes.
#
# Console handshake (host_tools/auth.py is the other end):
#   > auth                       < challenge <32 hex>  /  OK auth
#   > auth <HMAC(key, "bms-auth|" + challenge) as 64 hex>
#                                < session open for 300 s  /  OK auth
# The challenge is 16 bytes from os.urandom, used once (right or wrong) and
# good for CHALLENGE_MS, so a captured response is worth nothing. After a
# wrong response no challenge is given for 1, 2, 4, ... s (at most
# BACKOFF_MAX_MS) and the failure is an event (EV_AUTH, AUTH_FAIL).
# The count of failed attempts is kept in FAILS_FILE too, so a reset (or a
# USB power cycle) does not clear the back-off: written on a failed attempt
# only and removed on success, so flash wear is bounded by the back-off
# itself (one small write per failure, failures at most 1, 2, 4 ... s
# apart). The console runs between ticks, never inside one; the write is
# the same tmp + rename as mqtt_ctr.txt. After a reset the count is read at
# the first `auth` and its back-off runs from then (the board's clock
# starts again at a reset, so the time of the last failure is unknown; from
# the first attempt is the stricter choice). A counter file that cannot be
# read or does not parse counts as the maximum (fail closed), never as 0.
# Key rotation inside a session (the session's challenge is the nonce):
#   > key rotate <new XOR HMAC(old, "bms-rotate|" + nonce)> <HMAC(old, "bms-rotate-mac|" + nonce + new)>
# The key (32 bytes, key.bin on the board's filesystem) is read when
# needed and never written to the console, the log or the telemetry.
import os
from bms import ticks
from micropython import const
from bms.console import CommandError
from bms.hmac256 import hmac_sha256, equal
from bms.state import EV_AUTH, AUTH_FAIL, AUTH_OPEN, AUTH_ROTATED, AUTH_MAINTENANCE

KEY_FILE = "key.bin"
KEY_BYTES = const(32)
CHALLENGE_BYTES = const(16)
CHALLENGE_MS = const(30000)  # a challenge not answered within this is void
SESSION_MS = const(300000)  # a session ends 5 min after it opened
BACKOFF_MAX_MS = const(600000)  # the longest wait after failed attempts
CTR_FILE = "mqtt_ctr.txt"  # the newest accepted MQTT counter, against replay after a reboot
FAILS_FILE = "auth_fails.txt"  # failed attempts in a row, so the back-off survives a reset
FAILS_MAX = const(11)  # a count whose back-off is BACKOFF_MAX_MS: a corrupt counter file
FAILS_CHECK = const(0x2AAAAAAA)  # the file holds "N M" with M = N ^ FAILS_CHECK
ENOENT = const(2)


def _hex(b):
    return "".join("%02x" % x for x in b)


def _unhex(s, n):
    """n bytes from 2n hex digits, or None."""
    if len(s) != 2 * n:
        return None
    try:
        return bytes(int(s[i:i + 2], 16) for i in range(0, 2 * n, 2))
    except ValueError:
        return None


def load_key(root):
    try:
        with open(root + "/" + KEY_FILE, "rb") as f:
            k = f.read()
    except OSError:
        return None
    return k if len(k) == KEY_BYTES else None


def _key(con):
    k = load_key(con.root)
    if k is None:
        raise CommandError("no valid key on this board (" + KEY_FILE + "): changing commands stay locked; reflash with the key")
    return k


def _wait(fails):
    if fails <= 0:
        return 0
    wait = 1000 << (fails - 1) if fails < FAILS_MAX else BACKOFF_MAX_MS
    return wait if wait < BACKOFF_MAX_MS else BACKOFF_MAX_MS


def read_fails(root):
    """The persisted count of failed attempts: 0 when there is no file,
    FAILS_MAX when it cannot be read or does not parse (fail closed)."""
    try:
        f = open(root + "/" + FAILS_FILE)
    except OSError as e:
        return 0 if e.args and e.args[0] == ENOENT else FAILS_MAX
    try:
        with f:
            words = f.read().split()
        n = int(words[0])
        if len(words) != 2 or int(words[1]) != n ^ FAILS_CHECK or not 0 < n < 1000000:
            return FAILS_MAX
        return n
    except Exception:  # noqa: OSError, ValueError, IndexError, bad UTF-8: all count as corrupt
        return FAILS_MAX


def _restore(con, now_ms):
    # the first lock command since the board started: the count persisted
    # before the reset, its back-off counted from now
    n = read_fails(con.root)
    con.auth_fails = n
    con.auth_retry = ticks.add(now_ms, _wait(n)) if n else None


def _fail(con, now_ms):
    if con.auth_fails < 0:
        _restore(con, now_ms)
    con.auth_fails += 1
    wait = _wait(con.auth_fails)
    con.auth_retry = ticks.add(now_ms, wait)
    con.app.state.event(now_ms, EV_AUTH, AUTH_FAIL, con.auth_fails)
    n = con.auth_fails if con.auth_fails < 1000000 else 999999
    path = con.root + "/" + FAILS_FILE
    try:
        with open(path + ".tmp", "w") as f:
            f.write("%d %d\n" % (n, n ^ FAILS_CHECK))
        os.rename(path + ".tmp", path)  # atomic on littlefs: the old count or the new
    except OSError:
        con.auth_fails_unsaved += 1  # a full or failing filesystem: the back-off still holds in RAM
    return wait


def _succeeded(con):
    if con.auth_fails:  # nothing on flash to clear otherwise (no write on a clean login)
        try:
            os.remove(con.root + "/" + FAILS_FILE)
        except OSError:
            pass  # already gone, or not removable: the next reset counts it again (closed)
    con.auth_fails = 0
    con.auth_retry = None


def cmd_auth(con, args, now_ms):
    if con.root is None:
        raise CommandError("this board is in bench mode: nothing is locked")
    if len(args) > 1:
        raise CommandError("expected 'auth' or 'auth RESPONSE'")
    if con.auth_fails < 0:
        _restore(con, now_ms)
    if not args:
        if con.auth_retry is not None:
            left = ticks.diff(con.auth_retry, now_ms)
            if left > 0:
                raise CommandError("locked for %d ms after %d failed attempts" % (left, con.auth_fails))
        _key(con)
        con.challenge = os.urandom(CHALLENGE_BYTES)
        con.challenge_t = now_ms
        con.port.write("challenge " + _hex(con.challenge) + "\n")
        return
    c = con.challenge
    con.challenge = None  # used once, right or wrong
    if c is None or ticks.diff(now_ms, con.challenge_t) > CHALLENGE_MS:
        raise CommandError("no challenge open: ask for one first ('auth')")
    got = _unhex(args[0], 32)
    want = hmac_sha256(_key(con), b"bms-auth|" + c)
    if got is None or not equal(got, want):
        con.session_end = None
        raise CommandError("wrong response; next challenge in %d ms" % _fail(con, now_ms))
    _succeeded(con)
    con.session_end = ticks.add(now_ms, SESSION_MS)
    con.session_nonce = c
    con.app.state.event(now_ms, EV_AUTH, AUTH_OPEN, 0)
    con.port.write("session open for %d s\n" % (SESSION_MS // 1000))


def cmd_logout(con, args, now_ms):
    con._no_args(args)
    con.session_end = None
    con.session_nonce = None


def cmd_key(con, args, now_ms):
    if con.root is None:
        raise CommandError("this board is in bench mode: it has no key")
    if len(args) != 3 or args[0] != "rotate":
        raise CommandError("expected 'key rotate NEW_KEY_SEALED MAC' (bmsctl key rotate makes them)")
    old = _key(con)
    nonce = con.session_nonce
    sealed = _unhex(args[1], KEY_BYTES)
    mac = _unhex(args[2], 32)
    if nonce is None or sealed is None or mac is None:
        raise CommandError("expected 64 hex digits each, inside a session")
    pad = hmac_sha256(old, b"bms-rotate|" + nonce)
    new = bytes(sealed[i] ^ pad[i] for i in range(KEY_BYTES))
    if not equal(mac, hmac_sha256(old, b"bms-rotate-mac|" + nonce + new)):
        _fail(con, now_ms)
        raise CommandError("MAC does not match: key unchanged")
    path = con.root + "/" + KEY_FILE
    with open(path + ".tmp", "wb") as f:
        f.write(new)
    os.rename(path + ".tmp", path)  # atomic on littlefs: the old key or the new, never half
    con.session_end = None  # the next session is opened with the new key
    con.session_nonce = None
    con.app.state.event(now_ms, EV_AUTH, AUTH_ROTATED, 0)
    con.port.write("key replaced; session closed, open a new one with the new key\n")


def cmd_repl(con, args, now_ms):
    """Maintenance: outputs safe, then the REPL (the runner does both)."""
    con._no_args(args)
    con.maintenance = True
    con.app.state.event(now_ms, EV_AUTH, AUTH_MAINTENANCE, 0)
    con.port.write("OK repl\n")
    raise KeyboardInterrupt


def mqtt_open(con, name, msg, now_ms):
    """A production MQTT command {"cmd": "<inner JSON>", "mac": "<hex>"},
    MAC = HMAC(key, "bms-mqtt|" + name + "|" + inner); the inner object is
    the command (ts, ttl, ctr and its fields). Returns (inner, None) or
    (None, reason). The counter must grow; it is checked by mqtt_counter
    once the expiry has been."""
    import json
    inner = msg.get("cmd")
    mac = msg.get("mac")
    if len(msg) != 2 or not isinstance(inner, str) or not isinstance(mac, str):
        return None, "production mode: expected {\"cmd\": \"<command JSON>\", \"mac\": \"<HMAC hex>\"}"
    key = load_key(con.root)
    if key is None:
        return None, "no valid key on this board: MQTT commands are locked"
    got = _unhex(mac, 32)
    if got is None or not equal(got, hmac_sha256(key, ("bms-mqtt|" + name + "|" + inner).encode())):
        con.app.state.event(now_ms, EV_AUTH, AUTH_FAIL, 0)
        return None, "MAC does not match"
    try:
        d = json.loads(inner)
    except ValueError:
        return None, "cmd: invalid JSON"
    if not isinstance(d, dict):
        return None, "cmd: expected a JSON object"
    ctr = d.pop("ctr", None)
    if type(ctr) is not int or not 0 < ctr < 0x3FFFFFFF:
        return None, "ctr: expected an integer counter 1..2**30-2"
    if con.mqtt_ctr is None:
        con.mqtt_ctr = _read_ctr(con.root)
    if ctr <= con.mqtt_ctr:
        con.app.state.event(now_ms, EV_AUTH, AUTH_FAIL, 0)
        return None, "replay: counter %d is not above the last accepted %d" % (ctr, con.mqtt_ctr)
    d["_ctr"] = ctr
    return d, None


def mqtt_accept(con, ctr):
    """The command was fresh and valid: its counter is used up (saved, so a
    reboot does not make it good again)."""
    con.mqtt_ctr = ctr
    path = con.root + "/" + CTR_FILE
    with open(path + ".tmp", "w") as f:
        f.write(str(ctr))
    os.rename(path + ".tmp", path)


def _read_ctr(root):
    try:
        with open(root + "/" + CTR_FILE) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0
