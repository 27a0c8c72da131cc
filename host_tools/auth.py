"""The host end of the production lock (firmware/bms/auth.py): keys, the
console handshake, key rotation and signed MQTT commands.

A key is 32 random bytes (secrets.token_bytes) kept in a file only its
owner can read; `bmsctl keygen` makes one. Tools take it from --key-file or
the environment variable BMS_KEY_FILE (a path) or BMS_KEY (64 hex digits).
The key never crosses the wire: the board sends a fresh challenge, the host
answers HMAC-SHA256(key, "bms-auth|" + challenge)."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

KEY_BYTES = 32


class KeyError_(ValueError):
    pass


def keygen(path: Path) -> None:
    path = Path(path)
    if path.exists():
        raise KeyError_(f"{path}: exists; refusing to overwrite a key (a pack flashed with it would be locked out)")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(KEY_BYTES))


def load_key(key_file: str | None = None) -> bytes | None:
    """The key from key_file, else $BMS_KEY_FILE, else $BMS_KEY (hex); None
    when none is given."""
    path = key_file or os.environ.get("BMS_KEY_FILE")
    if path:
        try:
            k = Path(path).read_bytes()
        except OSError as e:
            raise KeyError_(f"key file {path}: {e.strerror}") from None
        if len(k) != KEY_BYTES:
            raise KeyError_(f"key file {path}: {len(k)} bytes, a key is {KEY_BYTES} (bmsctl keygen)")
        return k
    env = os.environ.get("BMS_KEY")
    if env:
        try:
            k = bytes.fromhex(env.strip())
        except ValueError:
            raise KeyError_("BMS_KEY: not hex digits") from None
        if len(k) != KEY_BYTES:
            raise KeyError_(f"BMS_KEY: {len(k)} bytes, a key is {KEY_BYTES}")
        return k
    return None


def response(key: bytes, challenge: bytes) -> str:
    return hmac.new(key, b"bms-auth|" + challenge, hashlib.sha256).hexdigest()


def rotate_args(old: bytes, new: bytes, nonce: bytes) -> str:
    """The `key rotate` line for a session opened with `nonce`."""
    pad = hmac.new(old, b"bms-rotate|" + nonce, hashlib.sha256).digest()
    sealed = bytes(a ^ b for a, b in zip(new, pad))
    mac = hmac.new(old, b"bms-rotate-mac|" + nonce + new, hashlib.sha256).hexdigest()
    return f"key rotate {sealed.hex()} {mac}"


def sign_mqtt(key: bytes, name: str, fields: dict, ctr: int, ttl_s: int = 30, ts: float | None = None) -> str:
    """A production MQTT command payload for bms/<node>/cmd/<name>."""
    inner = json.dumps(dict(fields, ts=int(ts if ts is not None else time.time()), ttl=ttl_s, ctr=ctr),
                       separators=(",", ":"))
    mac = hmac.new(key, ("bms-mqtt|" + name + "|" + inner).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"cmd": inner, "mac": mac})


def _reply(s, word: str, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    buf = b""
    lines: list[str] = []
    while time.monotonic() < deadline:
        buf += s.read(4096)
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode(errors="replace").strip()
            if not line or line.startswith("{"):
                continue
            if line == "OK " + word:
                return lines
            if line.startswith("ERR " + word + ":"):
                raise RuntimeError(line)
            if line.startswith("ERR "):
                continue
            lines.append(line)
    raise RuntimeError(f"no reply to {word!r} within {timeout_s:.0f} s")


def open_session(s, key: bytes, timeout_s: float = 10) -> bytes:
    """Runs the handshake on an open serial port `s` (pyserial); returns the
    session's nonce (for key rotation). Raises RuntimeError when refused."""
    s.write(b"\nauth\n")
    lines = _reply(s, "auth", timeout_s)
    ch = [ln for ln in lines if ln.startswith("challenge ")]
    if not ch:
        raise RuntimeError(f"no challenge in the reply to auth: {lines}")
    c = bytes.fromhex(ch[-1].split()[1])
    s.write(("auth " + response(key, c) + "\n").encode())
    _reply(s, "auth", timeout_s)
    return c


def command(s, line: str, timeout_s: float = 20) -> list[str]:
    s.write(b"\n" + line.encode() + b"\n")
    return _reply(s, line.split()[0].lower(), timeout_s)
