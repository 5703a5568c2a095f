"""Host-side payload codec: protocol v1 messages <-> msgpack bytes, with the C msgpack for speed.

Framing (COBS + CRC) is pnn_protocol's; this only adds the fast payload codec the SPEC allows the
host (same bytes: smallest forms, map keys in ascending order) and the response checks.
"""

from __future__ import annotations

from typing import Any

import msgpack

from pnn_protocol import messages
from pnn_protocol.errors import ProtocolError


def encode(msg: dict[str, Any]) -> bytes:
    """A message's payload bytes (keys sorted, as SPEC section 2 asks)."""
    payload = msgpack.packb(dict(sorted(msg.items())), use_bin_type=True)
    assert payload is not None  # packb returns bytes unless given a stream
    return payload


def decode(payload: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A device->host payload as a checked message dict; raises ProtocolError if it is not one."""
    try:
        msg = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as e:
        raise ProtocolError(4, f"undecodable payload: {e}") from None
    msg["id"] = messages.check_response(msg)[1]  # an ERROR's unreadable id (say, a map) is nil, never a bad key
    return msg
