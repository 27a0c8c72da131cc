# CRC-32 (IEEE) for stored records: binascii.crc32 where the port has it,
# else a small table-free loop (ports without MICROPY_PY_BINASCII_CRC32).
try:
    from binascii import crc32 as _crc32
except ImportError:  # pragma: no cover - depends on the port's build
    _crc32 = None


def crc32(data, crc=0):
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    crc = ~crc & 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return ~crc & 0xFFFFFFFF
