"""pnn wire protocol v1: framing, msgpack subset, messages, error codes (CPython and MicroPython alike).

Public API:
    frame(payload) -> bytes; frame_into(buf, n, out) -> int; FrameDecoder(max_frame).feed(data) -> payloads/errors
    packb(obj) -> bytes; unpackb(data) -> obj; Packer (writes into a preallocated buffer);
    Reader(data, max_items, max_str).read() -> obj (decoding within an allocation budget)
    messages: builders (run, result, hello, ping, ...), header / check_request / check_run / check_response
    errors: codes (BAD_CRC ... INTERNAL), name(code), ProtocolError
See protocol/SPEC.md for the wire format.
"""

from . import errors, messages
from .cobs import decode as cobs_decode
from .cobs import encode as cobs_encode
from .codec import DecodeError, Packer, Reader, packb, unpackb
from .crc import crc32
from .errors import ProtocolError
from .framing import FrameDecoder, frame, frame_into, frame_len, max_payload
from .messages import VERSION, max_codes

__all__ = [
    "VERSION",
    "DecodeError",
    "FrameDecoder",
    "Packer",
    "Reader",
    "ProtocolError",
    "cobs_decode",
    "cobs_encode",
    "crc32",
    "errors",
    "frame",
    "frame_into",
    "frame_len",
    "max_codes",
    "max_payload",
    "messages",
    "packb",
    "unpackb",
]
