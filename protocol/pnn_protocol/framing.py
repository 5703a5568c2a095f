"""Byte-stream framing of protocol v1: 0x00, COBS(payload || CRC32(payload) as uint32 LE), 0x00.

The leading 0x00 is optional for receivers (empty frames are ignored) but senders write it, so garbage on the
line before a frame costs one ERROR, never the frame. `max_frame` bounds the bytes between the delimiters.
Runs unchanged on CPython and MicroPython; on CPython the C `cobs` codec does the byte stuffing when it is
installed (pnn_protocol.cobs.fast_encode), giving the same bytes as the pure-Python reference.
"""

import struct

from .cobs import C_COBS, decode_in_place, encode_into, fast_encode, find0, max_encoded_len
from .compat import const
from .crc import crc32
from .errors import BAD_CRC, BAD_FRAME, TOO_LONG

CRC_LEN = const(4)


def frame_len(payload_len):
    """Most bytes between the delimiters that a payload of payload_len bytes can take."""
    return max_encoded_len(payload_len + CRC_LEN)


def max_payload(max_frame):
    """Largest payload that always fits a frame of max_frame bytes."""
    p = max_frame - CRC_LEN - 1 - max_frame // 254
    while p > 0 and frame_len(p) > max_frame:
        p -= 1
    return max(p, 0)


def frame_into(payload, n, out, start=0):
    """Frame payload[start:start+n] into `out` (bytearray of at least frame_len(n) + 2), allocation-free.

    `payload` must be a bytearray with CRC_LEN spare bytes after the payload: the CRC goes there.
    Returns the number of bytes of `out` to send.
    """
    struct.pack_into("<I", payload, start + n, crc32(memoryview(payload)[start : start + n]))
    out[0] = 0
    end = encode_into(payload, n + CRC_LEN, out, 1, start)
    out[end] = 0
    return end + 1


def frame(payload):
    """The wire bytes of one frame carrying `payload` (bytes-like)."""
    body = bytes(payload)
    return b"\x00" + fast_encode(body + struct.pack("<I", crc32(body))) + b"\x00"


class FrameDecoder:
    """Incremental, bounded frame decoder: feed bytes, get payloads or error codes.

    Bytes are copied into one preallocated buffer of max_frame bytes as they arrive (one slice per
    chunk) and decoded in place when the closing 0x00 comes. A frame that grows past max_frame is
    dropped as it streams (never buffered) and reported as TOO_LONG at the next 0x00, where decoding
    resynchronises. Any 0x00 ends a frame, so a lost or corrupt byte costs only the frame it hit.
    Between frames the buffer is free: a transport may borrow it to build its reply frame (hence `spare`).

    Args:
        max_frame: most bytes accepted between two delimiters.
        spare: extra bytes to allocate beyond max_frame (not used by the decoder).
    """

    def __init__(self, max_frame, spare=0):
        self.max_frame = max_frame
        self.buf = bytearray(max_frame + spare)
        self.mv = memoryview(self.buf)
        self.reset()

    def reset(self):
        """Forget any partial frame."""
        self._raw = 0  # bytes of this frame seen so far
        self._drop = False  # frame exceeded max_frame: discard until the delimiter

    def feed(self, data, n=-1):
        """Consume data[0:n] (bytes or bytearray; n=-1: all of it), yielding each completed frame's result.

        Yields:
            a memoryview of the payload (CRC checked and removed; valid until the generator resumes),
            or an int error code: BAD_CRC, BAD_FRAME or TOO_LONG.
        """
        if n < 0:
            n = len(data)
        src = memoryview(data)
        i = 0
        while i < n:
            z = find0(data, i, n)
            end = n if z < 0 else z
            if end > i:
                raw = self._raw
                self._raw = raw + end - i
                if self._raw > self.max_frame:
                    self._drop = True
                elif not self._drop:
                    self.mv[raw : self._raw] = src[i:end]
            if z < 0:
                return
            i = z + 1
            res = self._finish()
            if res is not None:
                yield res

    def _finish(self):
        raw, drop = self._raw, self._drop
        self.reset()
        if drop:
            return TOO_LONG
        if raw == 0:
            return None  # empty frame: the optional leading delimiter
        if C_COBS is not None:
            return _check_crc_c(self.buf[:raw])  # (the C codec takes no memoryview of a bytearray)
        res = decode_in_place(self.buf, raw)
        if res is None or res[1] < CRC_LEN + 1:
            return BAD_FRAME
        start, w = res
        n = w - CRC_LEN
        got = struct.unpack_from("<I", self.buf, start + n)[0]
        payload = self.mv[start : start + n]
        if crc32(payload) != got:
            return BAD_CRC
        return payload


def _check_crc_c(body):
    """FrameDecoder's last step through the C codec (CPython): the payload, BAD_FRAME or BAD_CRC."""
    try:
        data = C_COBS.decode(body)
    except C_COBS.DecodeError:
        return BAD_FRAME
    n = len(data) - CRC_LEN
    if n < 1:
        return BAD_FRAME
    payload = memoryview(data)[:n]
    if crc32(payload) != struct.unpack_from("<I", data, n)[0]:
        return BAD_CRC
    return payload
