"""Host-side codec: protocol v1 messages <-> msgpack payloads <-> frames, with the C codecs for speed.

The bytes are pnn_protocol's (SPEC sections 1-2: smallest forms, map keys in ascending order, COBS +
CRC32 framing); this module only does the host's share of them faster, since every request of a
training run goes through it: the C msgpack with one Packer per thread (msgpack.packb builds a new
one each call), no re-sort of a message built in key order, the C COBS codec, and a frame reader
that splits whole frames out of each chunk (`FrameReader`, pnn_protocol.FrameDecoder's results).
Replies are checked as pnn_protocol.messages.check_response checks them (`decode`).
"""

from __future__ import annotations

import threading
from binascii import crc32
from typing import Any

import msgpack

from pnn_protocol import FrameDecoder, messages
from pnn_protocol import frame as _frame_reference
from pnn_protocol.cobs import C_COBS
from pnn_protocol.errors import BAD_CRC, BAD_FRAME, TOO_LONG, ProtocolError

_local = threading.local()  # each thread's Packer (a Packer keeps a buffer: one thread at a time)
_RUNS: dict[tuple[Any, ...], dict[str, Any]] = {}  # a RUN of each shape, keys sorted (see run_request)
_SORTED: set[tuple[Any, ...]] = set()  # key orders seen already ascending: such a message is packed as it is
# crc32(payload + its CRC32 as uint32 LE) is this constant whatever the payload (CRC-32's residue), and no
# other 4 bytes behind the payload give it: one pass checks the frame, no slice of the payload needed
_RESIDUE = 0x2144DF1C


def encode(msg: dict[str, Any]) -> bytes:
    """A message's payload bytes (keys sorted, as SPEC section 2 asks)."""
    keys = tuple(msg)
    if keys not in _SORTED:
        ordered = dict(sorted(msg.items()))
        if tuple(ordered) != keys:
            msg = ordered
        elif len(_SORTED) < 256:  # (message shapes are few; a fuzzer's are not remembered past that)
            _SORTED.add(keys)
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(msg)


def run_request(req_id: int, drive: bytes, batch: int, n_drive: int, rate: int, oversample: int = 1, settle: int = 0,
                n_out: int | None = None, drive_width: int = 2) -> dict[str, Any]:  # fmt: skip
    """messages.run's RUN, its keys in ascending order (so `encode` packs it as it is): a copy of the
    RUN of that shape, made once, with this id and drive."""
    shape = (batch, n_drive, rate, oversample, settle, n_out, drive_width)
    template = _RUNS.get(shape)
    if template is None:
        run = messages.run(0, b"", batch, n_drive, rate, oversample, settle, n_out, drive_width)
        template = dict(sorted(run.items()))
        if len(_RUNS) < 256:  # (a run uses one or two shapes; a fuzzer's are not remembered past that)
            _RUNS[shape] = template
    msg = template.copy()
    msg["id"], msg["drive"] = req_id, drive
    return msg


def frame(payload: bytes) -> bytes:
    """The wire bytes of one frame carrying `payload`, as pnn_protocol.frame makes them."""
    if C_COBS is None:
        return _frame_reference(payload)
    return b"\x00" + C_COBS.encode(payload + crc32(payload).to_bytes(4, "little")) + b"\x00"


def encode_frame(msg: dict[str, Any]) -> bytes:
    """A message as the frame that carries it."""
    return frame(encode(msg))


def decode(payload: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A device->host payload as a checked message dict; raises ProtocolError if it is not one."""
    try:
        msg = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as e:
        raise ProtocolError(4, f"undecodable payload: {e}") from None
    if type(msg) is dict and msg.get("t") == messages.RESULT and _good_result(msg):
        return msg  # (what check_response accepts, in a third of its time: the reply to every RUN)
    msg["id"] = messages.check_response(msg)[1]  # an ERROR's unreadable id (say, a map) is nil, never a bad key
    return msg


def _good_result(m: dict[str, Any]) -> bool:
    """Whether `m` (t == "result") is a RESULT that check_response accepts as it is: every field present,
    exactly an int (no bool) in its range, resp exactly 2 x batch x n_out bytes. Anything else, valid or
    not, is left to check_response, which says what is wrong."""
    g = m.get
    b, n, r, i, v, p, o = g("batch"), g("n_out"), g("resp"), g("id"), g("v"), g("period_us"), g("overruns")
    top = messages.MAX_ID
    return (type(b) is int and type(n) is int and type(i) is int and type(v) is int and type(p) is int
            and type(o) is int and type(r) is bytes and v == messages.VERSION and 0 < b <= top and 0 < n <= top
            and 0 <= i <= top and 0 <= p <= top and 0 <= o <= top and len(r) == 2 * b * n)  # fmt: skip


class FrameReader:
    """pnn_protocol.FrameDecoder's results from a byte stream, by the C COBS codec (CPython).

    The same payloads and error codes (BAD_CRC, BAD_FRAME, TOO_LONG) for the same bytes, however they are
    cut into chunks, within the same bound: a frame past `max_frame` bytes is dropped as it streams and
    reported as TOO_LONG at its delimiter. Each chunk's whole frames are split out in one pass and decoded
    as they are; only the unfinished frame at its end is kept (its bytes, at most max_frame).

    Args:
        max_frame: most bytes accepted between two delimiters.
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._part = b""  # the unfinished frame's bytes so far
        self._drop = False  # it grew past max_frame: discarded up to its delimiter

    def reset(self) -> None:
        """Forget any partial frame."""
        self._part, self._drop = b"", False

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | int]:
        """Consume `data`; each frame it completes, in order: its payload (CRC checked and removed) or an
        error code."""
        bodies = bytes(data).split(b"\x00")
        tail = bodies.pop()  # (after the last delimiter: the start of the next frame)
        out: list[bytes | int] = []
        for k, body in enumerate(bodies):
            if k == 0 and (self._part or self._drop):
                body, too_long = self._part + body, self._drop
                self._part, self._drop = b"", False
                if too_long or len(body) > self.max_frame:
                    out.append(TOO_LONG)
                    continue
            if body:  # (an empty frame: the optional leading delimiter)
                out.append(TOO_LONG if len(body) > self.max_frame else _payload(body))
        if self._drop or len(self._part) + len(tail) > self.max_frame:
            self._part, self._drop = b"", True
        elif tail:
            self._part += tail
        return out


def _payload(body: bytes) -> bytes | int:
    assert C_COBS is not None
    try:
        data = C_COBS.decode(body)
    except C_COBS.DecodeError:
        return BAD_FRAME
    if len(data) < 5:  # (a CRC and at least one payload byte)
        return BAD_FRAME
    return data[:-4] if crc32(data) == _RESIDUE else BAD_CRC


def frame_reader(max_frame: int) -> FrameReader | FrameDecoder:
    """The host's frame decoder for one stream: FrameReader, or pnn_protocol's where the C codec is missing."""
    return FrameReader(max_frame) if C_COBS is not None else FrameDecoder(max_frame)
