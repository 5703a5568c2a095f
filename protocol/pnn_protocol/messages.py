"""Messages of protocol v1: type names, builders, request/response validation and the limits helpers.

Every message is a msgpack map with "v" (protocol version), "t" (type) and "id" (request id, uint32; null in
an ERROR about a frame whose id could not be read). Builders return dicts for codec.packb; validators raise
ProtocolError with the code the device answers with. Runs unchanged on CPython and MicroPython.
"""

from .compat import const
from .errors import (
    BAD_FIELD,
    BAD_PAYLOAD,
    BAD_VERSION,
    OUT_OF_RANGE,
    UNKNOWN_TYPE,
    ProtocolError,
)
from .framing import max_payload

VERSION = const(1)

HELLO = "hello"
RUN = "run"
RESULT = "result"
PING = "ping"
PONG = "pong"
CONFIG = "config"
RESET = "reset"
REPL = "repl"
ERROR = "error"

REQUESTS = (HELLO, RUN, PING, CONFIG, RESET, REPL)
RESPONSES = (HELLO, RESULT, PONG, CONFIG, RESET, REPL, ERROR)

MAX_ID = 0xFFFFFFFF
# Upper bound on everything in a RUN or RESULT besides its code blob (keys, headers, ints at their widest).
RUN_OVERHEAD = const(128)
# Settable CONFIG keys (v1).
CONFIG_KEYS = ("rest_code",)
# Bytes per drive code in a RUN: 2 (uint16 LE, the default) or 1 (uint8, where HELLO caps' "drive_widths" lists it).
DRIVE_WIDTHS = (1, 2)


def topics(device_id, prefix="pnn"):
    """(req, resp, status) MQTT topics of one board (SPEC section 5): <prefix>/<id>/req, .../resp, .../status.

    topics("+", prefix)[2] is the filter that matches every board's status.
    """
    base = prefix + "/" + device_id + "/"
    return base + "req", base + "resp", base + "status"


def max_codes(max_frame):
    """Most uint16 codes (batch * n_drive, or batch * n_out) one RUN or RESULT can carry in max_frame."""
    return max(0, (max_payload(max_frame) - RUN_OVERHEAD) // 2)


def _msg(t, req_id):
    return {"v": VERSION, "t": t, "id": req_id}


def hello_request(req_id):
    return _msg(HELLO, req_id)


def hello(req_id, device, fw, board, caps, boot=None):
    """The device's HELLO answer. caps: see SPEC.md ("HELLO capabilities"); boot: this boot's id (uint32)."""
    m = _msg(HELLO, req_id)
    if boot is not None:
        m["boot"] = boot
    m["device"] = device
    m["fw"] = fw
    m["proto"] = VERSION
    m["board"] = board
    m["caps"] = caps
    return m


def run(req_id, drive, batch, n_drive, rate, oversample=1, settle=0, n_out=None, drive_width=2):
    """A RUN request. drive: bytes-like of codes [batch * n_drive], little-endian uint16 (drive_width 2)
    or uint8 (drive_width 1: only for a board whose HELLO caps list it in "drive_widths")."""
    m = _msg(RUN, req_id)
    if drive_width != 2:  # the default is left out, so a RUN to an older board is byte for byte as before
        m["drive_width"] = drive_width
    m["drive"] = drive
    m["batch"] = batch
    m["n_drive"] = n_drive
    m["rate"] = rate
    m["oversample"] = oversample
    m["settle"] = settle
    m["n_out"] = n_drive if n_out is None else n_out
    return m


def result(req_id, resp, batch, n_out, period_us, overruns):
    """A RESULT. resp: bytes-like of little-endian uint16 codes [batch * n_out]."""
    m = _msg(RESULT, req_id)
    m["resp"] = resp
    m["batch"] = batch
    m["n_out"] = n_out
    m["period_us"] = period_us
    m["overruns"] = overruns
    return m


def _echo(kind, req_id, data):
    m = _msg(kind, req_id)
    if data is not None:
        m["data"] = data
    return m


def ping(req_id, data=None):
    return _echo(PING, req_id, data)


def pong(req_id, data=None, boot=None):
    """PONG echoing data; boot: the device's boot id (as in its HELLO), so a heartbeat sees a reboot."""
    m = _echo(PONG, req_id, data)
    if boot is not None:
        m["boot"] = boot
    return m


def config_request(req_id, settings=None):
    """CONFIG: read the settings, or change some (settings: dict of CONFIG_KEYS) and read them back."""
    m = _msg(CONFIG, req_id)
    if settings is not None:
        m["set"] = settings
    return m


def config(req_id, settings):
    m = _msg(CONFIG, req_id)
    m["config"] = settings
    return m


def reset(req_id, hard=False):
    m = _msg(RESET, req_id)
    if hard:
        m["hard"] = True
    return m


def repl(req_id):
    """Ask the device to leave the binary protocol and return to the REPL (restores Ctrl-C)."""
    return _msg(REPL, req_id)


def ack(t, req_id):
    """The device's plain acknowledgement of RESET or REPL."""
    return _msg(t, req_id)


def error(req_id, code, msg):
    m = _msg(ERROR, req_id)
    m["code"] = code
    m["msg"] = msg
    return m


def _is_int(x):
    # bool is an int subclass on CPython (not on MicroPython): refuse it on both
    return isinstance(x, int) and not isinstance(x, bool)


def get_int(m, key, lo, hi, req_id=None, default=None):
    """m[key] as an int in [lo, hi]; raises BAD_FIELD (missing / not an int) or OUT_OF_RANGE.

    A nil value counts as absent (SPEC section 3): the default, or BAD_FIELD for a required field.
    """
    v = m.get(key)
    if v is None:
        v = default
    if v is None or not _is_int(v):
        raise ProtocolError(BAD_FIELD, "field %r must be an integer" % key, req_id)
    if v < lo or v > hi:
        raise ProtocolError(OUT_OF_RANGE, "%s=%d outside [%d, %d]" % (key, v, lo, hi), req_id)
    return v


def get_bin(m, key, req_id=None):
    v = m.get(key)
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise ProtocolError(BAD_FIELD, "field %r must be bin" % key, req_id)
    return v


def header(m):
    """Check a decoded message's envelope; returns (type, request id or None).

    Raises:
        ProtocolError: BAD_PAYLOAD (not a map), BAD_VERSION, BAD_FIELD (no usable "t"). The id is
        attached whenever the map carries a valid one.
    """
    if not isinstance(m, dict):
        raise ProtocolError(BAD_PAYLOAD, "payload is not a msgpack map")
    req_id = m.get("id")
    if not _is_int(req_id) or req_id < 0 or req_id > MAX_ID:
        req_id = None
    v = m.get("v")
    if not _is_int(v) or v != VERSION:
        raise ProtocolError(
            BAD_VERSION, "protocol version %r not supported (this side speaks %d)" % (v, VERSION), req_id
        )
    t = m.get("t")
    if not isinstance(t, str):
        raise ProtocolError(BAD_FIELD, "field 't' must be a str", req_id)
    return t, req_id


def check_request(m):
    """Envelope of a host->device message: (type, id). Unknown type or missing id -> ProtocolError."""
    t, req_id = header(m)
    if t not in REQUESTS:
        raise ProtocolError(UNKNOWN_TYPE, "unknown request type %r" % t, req_id)
    if req_id is None:
        raise ProtocolError(BAD_FIELD, "field 'id' must be an integer in [0, 2**32)", None)
    return t, req_id


def check_run(m, caps, req_id=None):
    """Validate a RUN against the device limits (HELLO caps), before anything is allocated.

    Each field is checked whole (type, then range) before the next, in SPEC's order.
    Returns (drive, batch, n_drive, rate, oversample, settle, n_out, drive_width).
    """
    batch = get_int(m, "batch", 1, caps["max_batch"], req_id)
    n_drive = get_int(m, "n_drive", 1, caps["max_drive"], req_id)
    n_out = get_int(m, "n_out", 1, min(n_drive, caps["max_out"]), req_id)
    rate = get_int(m, "rate", caps["min_rate"], caps["max_rate"], req_id)
    oversample = get_int(m, "oversample", 1, caps["max_oversample"], req_id, 1)
    settle = get_int(m, "settle", 0, caps["max_settle"], req_id, 0)
    width = get_int(m, "drive_width", 1, 2, req_id, 2)
    widths = caps.get("drive_widths") or (2,)  # a board that does not say takes uint16 only
    if width not in widths:
        raise ProtocolError(OUT_OF_RANGE, "drive_width=%d; this board takes %r" % (width, list(widths)), req_id)
    drive = get_bin(m, "drive", req_id)
    if len(drive) != width * batch * n_drive:
        raise ProtocolError(
            BAD_FIELD,
            "drive is %d bytes, batch*n_drive*drive_width = %d" % (len(drive), width * batch * n_drive),
            req_id,
        )
    if batch * n_out > caps["max_codes"]:
        raise ProtocolError(
            OUT_OF_RANGE,
            "RESULT of %d codes would exceed max_frame (max %d)" % (batch * n_out, caps["max_codes"]),
            req_id,
        )
    return drive, batch, n_drive, rate, oversample, settle, n_out, width


def check_response(m):
    """Envelope and fields of a device->host message; returns (type, id). Raises ProtocolError."""
    t, req_id = header(m)
    if t not in RESPONSES:
        raise ProtocolError(UNKNOWN_TYPE, "unknown response type %r" % t, req_id)
    if t == RESULT:
        batch = get_int(m, "batch", 1, MAX_ID, req_id)
        n_out = get_int(m, "n_out", 1, MAX_ID, req_id)
        resp = get_bin(m, "resp", req_id)
        if len(resp) != 2 * batch * n_out:
            raise ProtocolError(
                BAD_FIELD, "resp is %d bytes, expected %d" % (len(resp), 2 * batch * n_out), req_id
            )
        get_int(m, "period_us", 0, MAX_ID, req_id)
        get_int(m, "overruns", 0, MAX_ID, req_id)
    elif t == ERROR:
        get_int(m, "code", 0, 0xFFFF, req_id)
        if not isinstance(m.get("msg"), str):
            raise ProtocolError(BAD_FIELD, "ERROR needs a str 'msg'", req_id)
    elif t == HELLO and not isinstance(m.get("caps"), dict):
        raise ProtocolError(BAD_FIELD, "HELLO needs a 'caps' map", req_id)
    if req_id is None and t != ERROR:
        raise ProtocolError(BAD_FIELD, "response without an id", None)
    return t, req_id
