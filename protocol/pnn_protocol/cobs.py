"""Consistent Overhead Byte Stuffing (Cheshire & Baker 1999): data without 0x00, so 0x00 can end a frame.

Blocks: a code byte c (1..255) then c-1 data bytes; a block with c < 255 stands for its bytes plus one 0x00,
except the last block of the frame. The slow paths are per block, never per byte, so this is quick enough on
MicroPython too. Runs unchanged on CPython and MicroPython.
"""

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
    """COBS-encode src[start:start+n] (bytes or bytearray) into dst (bytearray) from index pos.

    Returns the end index in dst.

    Raises:
        IndexError: dst is too small (size it with max_encoded_len).
    """
    smv = memoryview(src)
    dmv = memoryview(dst)
    i = start
    n += start
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


def encode(data):
    """COBS-encode a bytes-like object; returns bytes without any 0x00."""
    src = data if isinstance(data, (bytes, bytearray)) else bytes(data)
    out = bytearray(max_encoded_len(len(src)))
    n = encode_into(src, len(src), out, 0)
    return bytes(out[:n])


def decode(data):
    """Decode one COBS block sequence (no delimiter) to bytes.

    Raises:
        ValueError: a 0x00 inside, or a block that runs past the end (a truncated frame).
    """
    src = data if isinstance(data, (bytes, bytearray)) else bytes(data)
    n = len(src)
    if find0(src, 0, n) >= 0:
        raise ValueError("0x00 inside a COBS frame")
    out = bytearray(n)
    omv = memoryview(out)
    smv = memoryview(src)
    i = 0
    w = 0
    while i < n:
        c = src[i]
        k = c - 1
        if i + 1 + k > n:
            raise ValueError("COBS block runs past the end of the frame")
        omv[w : w + k] = smv[i + 1 : i + 1 + k]
        w += k
        i += 1 + k
        if c < 255 and i < n:
            out[w] = 0
            w += 1
    return bytes(out[:w])
