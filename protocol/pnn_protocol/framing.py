"""Byte-stream framing of protocol v1: 0x00, COBS(payload || CRC32(payload) as uint32 LE), 0x00.

The leading 0x00 is optional for receivers (empty frames are ignored) but senders write it, so garbage on the
line before a frame costs one ERROR, never the frame. `max_frame` bounds the bytes between the delimiters.
Runs unchanged on CPython and MicroPython.
"""

import struct

from .cobs import encode_into, find0, max_encoded_len
from .crc import crc32
from .errors import BAD_CRC, BAD_FRAME, TOO_LONG

CRC_LEN = 4


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
    n = len(payload)
    buf = bytearray(n + CRC_LEN)
    memoryview(buf)[:n] = payload
    out = bytearray(frame_len(n) + 2)
    k = frame_into(buf, n, out)
    return bytes(out[:k])


class FrameDecoder:
    """Incremental, bounded frame decoder: feed bytes, get payloads or error codes.

    Decodes COBS as bytes stream in, straight into one preallocated buffer of max_frame bytes; a frame
    that grows past max_frame is dropped as it streams (never buffered) and reported as TOO_LONG at the
    next 0x00, where decoding resynchronises. Any 0x00 ends a frame, so a lost or corrupt byte costs only
    the frame it hit.

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
        self._raw = 0  # encoded bytes seen in this frame
        self._w = 0  # decoded bytes written
        self._left = 0  # data bytes still due in the current COBS block
        self._zero = False  # the current block ends with an implied 0x00 (if another block follows)
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
                self._consume(data, src, i, end)
            if z < 0:
                return
            i = z + 1
            res = self._finish()
            if res is not None:
                yield res

    def _consume(self, data, src, i, end):
        # data[i:end] holds no 0x00
        self._raw += end - i
        if self._drop:
            return
        if self._raw > self.max_frame:
            self._drop = True
            return
        buf = self.buf
        w = self._w
        left = self._left
        while i < end:
            if left == 0:
                c = data[i]
                i += 1
                if self._zero:
                    buf[w] = 0
                    w += 1
                left = c - 1
                self._zero = c < 255
            else:
                k = left if left < end - i else end - i
                self.mv[w : w + k] = src[i : i + k]
                w += k
                i += k
                left -= k
        self._w = w
        self._left = left

    def _finish(self):
        raw, w, left, drop = self._raw, self._w, self._left, self._drop
        self.reset()
        if drop:
            return TOO_LONG
        if raw == 0:
            return None  # empty frame: the optional leading delimiter
        if left != 0 or w < CRC_LEN + 1:
            return BAD_FRAME
        n = w - CRC_LEN
        got = struct.unpack_from("<I", self.buf, n)[0]
        if crc32(self.mv[:n]) != got:
            return BAD_CRC
        return self.mv[:n]
