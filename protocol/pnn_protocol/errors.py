"""Error codes of wire protocol v1 and the exception that carries one.

Runs unchanged on CPython and MicroPython.
"""

from .compat import const

BAD_CRC = const(1)  # frame CRC32 did not match its payload
BAD_FRAME = const(2)  # COBS structure broken (truncated frame) or frame shorter than CRC + 1 byte
TOO_LONG = const(3)  # frame (or MQTT payload) longer than max_frame: dropped while streaming
BAD_PAYLOAD = const(4)  # payload is not msgpack of the v1 subset, or not a map
BAD_VERSION = const(5)  # "v" missing or not the integer 1
UNKNOWN_TYPE = const(6)  # "t" is not a known message type
BAD_FIELD = const(7)  # a required field is missing or has the wrong type, or an unknown CONFIG key
OUT_OF_RANGE = const(8)  # a field is outside the device's limits (see HELLO caps)
UNSUPPORTED = const(9)  # valid request this device cannot do (e.g. hard reset on the simulator)
INTERNAL = const(10)  # the device failed while serving a valid request

NAMES = {
    BAD_CRC: "BAD_CRC",
    BAD_FRAME: "BAD_FRAME",
    TOO_LONG: "TOO_LONG",
    BAD_PAYLOAD: "BAD_PAYLOAD",
    BAD_VERSION: "BAD_VERSION",
    UNKNOWN_TYPE: "UNKNOWN_TYPE",
    BAD_FIELD: "BAD_FIELD",
    OUT_OF_RANGE: "OUT_OF_RANGE",
    UNSUPPORTED: "UNSUPPORTED",
    INTERNAL: "INTERNAL",
}


def name(code):
    """Symbolic name of an error code ("E<code>" for codes this version does not know)."""
    return NAMES.get(code, "E%d" % code)


class ProtocolError(Exception):
    """A request (or frame) that must be answered with an ERROR message.

    Attributes:
        code: one of the error codes above.
        msg: human-readable text for the ERROR's "msg" field.
        req_id: the request id when it could be read, else None.
    """

    def __init__(self, code, msg, req_id=None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.req_id = req_id

    def __str__(self):
        return "%s: %s" % (name(self.code), self.msg)
