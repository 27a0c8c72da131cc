# HMAC-SHA256 (RFC 2104) over hashlib.sha256: MicroPython has the hash but
# no hmac module. Used by the production lock (bms/auth.py), loaded only
# when a command needs it.
import hashlib

BLOCK = 64  # SHA-256 block size in bytes (FIPS 180-4)


def hmac_sha256(key, msg):
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    k = bytearray(BLOCK)
    k[:len(key)] = key
    for i in range(BLOCK):
        k[i] ^= 0x36
    inner = hashlib.sha256(k)
    inner.update(msg)
    ih = inner.digest()
    for i in range(BLOCK):
        k[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(k)
    outer.update(ih)
    return outer.digest()


def equal(a, b):
    """Constant-time comparison: the time does not tell how many leading
    bytes matched (only whether the lengths differ)."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0
