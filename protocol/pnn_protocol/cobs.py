"""Consistent Overhead Byte Stuffing (Cheshire & Baker 1999): data without 0x00, so 0x00 can end a frame.

Blocks: a code byte c (1..255) then c-1 data bytes; a block with c < 255 stands for its bytes plus one 0x00,
except the last block of the frame. Python-level work is per block (per zero byte of the data) and small;
the bytes themselves move in C-speed slices. Runs unchanged on CPython and MicroPython.

This pure-Python codec is the reference. On CPython, `fast_encode` / `fast_decode` are the C `cobs`
package's (PyPI "cobs": the same bytes, about 10x faster on drive blobs full of zero bytes) when it is
installed, these functions otherwise; MicroPython never tries to import it.
"""

import sys

_ZERO = b"\x00"
_HAS_FIND = hasattr(bytearray, "find")


def find0(buf, start, end):
    """Index of the first 0x00 in buf[start:end] (bytes or bytearray), or -1."""
    if _HAS_FIND:
        return buf.find(_ZERO, start, end)
    for i in range(start, end):  # ports whose bytearray lacks find()
        if buf[i] == 0:
            return i
    return -1


def max_encoded_len(n):
    """Largest COBS encoding of n bytes (no delimiter): one code byte per started 254-byte run."""
    return n + 1 + n // 254


def encode_into(src, n, dst, pos, start=0):
    """COBS-encode src[start:start+n] into dst (bytearray) from index pos, allocation-free.

    Copies the data one byte to the right in one slice, then turns each 0x00 (and the byte in front)
    into the distance to the next one. Returns the end index in dst.

    Raises:
        IndexError: dst is too small (size it with max_encoded_len).
    """
    end = pos + 1 + n
    if end > len(dst):
        raise IndexError("COBS output buffer too small")
    memoryview(dst)[pos + 1 : end] = memoryview(src)[start : start + n]
    prev = pos
    j = pos + 1
    while True:
        z = find0(dst, j, end)
        if z < 0:
            z = end
        if z - prev > 254:
            # a run of 254+ non-zero bytes needs 0xFF blocks: the general encoder
            return _encode_blocks(src, start, start + n, dst, pos)
        dst[prev] = z - prev
        if z == end:
            return end
        prev = z
        j = z + 1


def _encode_blocks(src, i, n, dst, pos):
    smv = memoryview(src)
    dmv = memoryview(dst)
    while True:
        z = find0(src, i, n)
        end = n if z < 0 else z
        seg_len = end - i
        while end - i >= 254:
            if pos + 255 > len(dst):
                raise IndexError("COBS output buffer too small")
            dst[pos] = 255
            dmv[pos + 1 : pos + 255] = smv[i : i + 254]
            pos += 255
            i += 254
        if z < 0 and seg_len > 0 and i == end:
            return pos  # last segment was a whole number of 255-blocks: nothing more to say
        k = end - i
        if pos + 1 + k > len(dst):
            raise IndexError("COBS output buffer too small")
        dst[pos] = k + 1
        dmv[pos + 1 : pos + 1 + k] = smv[i:end]
        pos += 1 + k
        if z < 0:
            return pos
        i = z + 1


_CODE = [bytes((k + 1,)) for k in range(254)]  # code byte of a block of k data bytes


def encode(data):
    """COBS-encode a bytes-like object; returns bytes without any 0x00 (host path: fast, allocates)."""
    segs = bytes(data).split(_ZERO)
    parts = []
    for s in segs:
        k = len(s)
        if k >= 254:
            return _encode_long(segs)
        parts.append(_CODE[k])
        parts.append(s)
    return b"".join(parts)


def _encode_long(segs):
    # some segment needs 0xFF blocks
    out = bytearray()
    last = len(segs) - 1
    for j in range(last + 1):
        s = segs[j]
        k = len(s)
        o = 0
        while k - o >= 254:
            out.append(255)
            out += s[o : o + 254]
            o += 254
        if o == k and k > 0 and j == last:
            break  # last segment was a whole number of 255-blocks
        out.append(k - o + 1)
        out += s[o:]
    return bytes(out)


def decode_in_place(buf, n):
    """Decode the COBS blocks in buf[0:n] (no 0x00 among them) in place.

    Returns:
        (start, length) of the decoded bytes in buf, or None if the blocks do not end exactly at n
        (a truncated or corrupt frame).
    """
    # With no 0xFF block (the usual case) each code byte after the first sits exactly where its 0x00
    # goes, so zeroing the code bytes as the walk finds them decodes in place; the walk must land on n.
    i = 0
    while i < n:
        c = buf[i]
        if c == 255:
            if i == 0:
                return _decode_blocks(buf, n, 0, 0)
            # buf[1:i] is decoded already, and the block before i ends with a 0x00: move it to the front
            memoryview(buf)[0 : i - 1] = memoryview(buf)[1:i]
            buf[i - 1] = 0
            return _decode_blocks(buf, n, i, i)
        buf[i] = 0
        i += c
    if i != n:
        return None
    return (1, n - 1) if n else (0, 0)


def _decode_blocks(buf, n, r, w):
    # General path from buf[r]: move each block left over the code bytes (w never passes r).
    mv = memoryview(buf)
    while r < n:
        c = buf[r]
        if r + c > n:
            return None
        k = c - 1
        mv[w : w + k] = mv[r + 1 : r + c]
        w += k
        r += c
        if c < 255 and r < n:
            buf[w] = 0
            w += 1
    return 0, w


def decode(data):
    """Decode one COBS block sequence (no delimiter) to bytes.

    Raises:
        ValueError: a 0x00 inside, or a block that runs past the end (a truncated frame).
    """
    buf = bytearray(data)
    n = len(buf)
    if find0(buf, 0, n) >= 0:
        raise ValueError("0x00 inside a COBS frame")
    res = decode_in_place(buf, n)
    if res is None:
        raise ValueError("COBS block runs past the end of the frame")
    return bytes(buf[res[0] : res[0] + res[1]])


def _c_codec():
    """The C codec module (cobs.cobs) on CPython when installed, else None (never looked for on MicroPython)."""
    if sys.implementation.name == "micropython":
        return None
    try:
        from cobs import cobs as c  # PyPI "cobs" (an absolute import: not this module)
    except ImportError:
        return None
    return c


C_COBS = _c_codec()


def _plain(data):
    # the C codec refuses memoryviews (it wants a buffer without a format)
    return data if isinstance(data, (bytes, bytearray)) else bytes(data)


def fast_encode(data):
    """encode(data), by the C codec where there is one."""
    return C_COBS.encode(_plain(data)) if C_COBS is not None else encode(data)


def fast_decode(data):
    """decode(data), by the C codec where there is one. Raises ValueError as decode() does."""
    if C_COBS is None:
        return decode(data)
    try:
        return C_COBS.decode(_plain(data))
    except C_COBS.DecodeError as e:
        raise ValueError(str(e)) from None
