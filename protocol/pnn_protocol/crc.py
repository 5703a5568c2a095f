"""CRC-32 (IEEE 802.3, the zlib/binascii one) with a table-driven fallback for ports without binascii.crc32."""

try:
    from binascii import crc32 as _crc32
except ImportError:  # some MicroPython ports build binascii without crc32
    _crc32 = None

_table = None


def _make_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t.append(c)
    return t


def crc32(data, crc=0):
    """CRC-32 of a bytes-like object, continuing from `crc`; returns an int in [0, 2**32)."""
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    global _table
    if _table is None:
        _table = _make_table()
    t = _table
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
