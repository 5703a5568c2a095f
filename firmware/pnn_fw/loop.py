"""The device loop: decoded request payload -> validate -> dispatch -> response payload.

Transport-agnostic: a transport hands `handle()` one payload (or `frame_error()` one framing error code)
and sends back the bytes it returns. Every buffer a response can need is allocated here, once: a small
packer for the short responses, and the RESULT cache, a byte pool that RESULTs are packed straight into
(SPEC section 4: a RUN whose id is still in it is answered from it, never run twice). Requests are
checked against the limits before anything is played or packed.
"""

from micropython import const

from pnn_fw import FW_VERSION
from pnn_fw.runner import MAX_OVERSAMPLE, MAX_SETTLE, LayerRunner
from pnn_protocol import errors, messages
from pnn_protocol.codec import DecodeError, Packer, Reader
from pnn_protocol.errors import ProtocolError
from pnn_protocol.framing import CRC_LEN, max_payload

# What the transport must do after sending the response (loop.action).
ACTION_REPL = "repl"
ACTION_HARD_RESET = "hard_reset"

CACHE_ENTRIES = const(8)  # most RESULTs kept (the pool's size usually binds first for big ones)
TX_SMALL = const(1024)  # every response but RESULT fits this: HELLO, PONG (data <= MAX_PING), CONFIG, ERROR
MAX_PING = const(256)
# What decoding one request may allocate. A v1 request is a map of about ten keys; bins (the drive) are
# views into the frame, never copies. An array of 8,000 nils fits a frame but not the heap: it is
# refused as BAD_PAYLOAD before it is built, instead of ending in a MemoryError.
MAX_ITEMS = const(64)  # container entries (map pairs, array items) in the whole request
MAX_STR = const(1024)  # bytes of str values and keys in the whole request


def decode_request(payload):
    """One msgpack value of the subset, within the request budget (MAX_ITEMS, MAX_STR).

    Raises:
        DecodeError: malformed, outside the subset or the budget, or trailing bytes.
    """
    return Reader(payload, MAX_ITEMS, MAX_STR).read()


def boot_id(counter_path=None) -> int:
    """A uint32 that differs at every boot (HELLO and PONG carry it, so the host notices a silent reboot).

    A boot counter kept in the file `counter_path` (read, incremented and written back once per boot) goes
    through a bijective 32-bit mixer, offset by a hash of machine.unique_id() and os.urandom: two
    boots of one board never share an id, even on a chip with no randomness at all (the emulated RP2040's
    os.urandom and unique_id are constants), and boards with the same count still differ by their ids and
    randomness. Without a counter file (the unix port) the randomness alone makes it.
    """
    count = _bump(counter_path) if counter_path else 0
    salt = 0x811C9DC5  # FNV-1a over every byte of entropy there is
    for b in _entropy():
        salt = ((salt ^ b) * 16777619) & 0xFFFFFFFF
    return _mix32((count + salt) & 0xFFFFFFFF)


def _bump(path: str) -> int:
    """The boot counter in `path` plus one, written back (a missing or unreadable file counts from 0)."""
    try:
        with open(path) as f:
            count = int(f.read().strip() or "0")
    except (OSError, ValueError):
        count = 0
    count = (count + 1) & 0xFFFFFFFF
    try:
        with open(path, "w") as f:
            f.write(str(count))
    except OSError:  # a read-only filesystem: the randomness below still varies where the chip has any
        pass
    return count


def _entropy() -> bytes:
    """os.urandom (hardware RNG on boards, /dev/urandom on the unix port) and the chip's id."""
    out = b""
    try:
        import os

        out += os.urandom(8)
    except (ImportError, AttributeError, OSError):
        pass
    try:
        import machine

        out += machine.unique_id()
    except (ImportError, AttributeError):
        pass
    return out


def _mix32(h: int) -> int:
    """MurmurHash3's finaliser: a bijection on uint32 (xor-shifts and odd multipliers)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _board_int(board: dict, key: str, default=None) -> int:
    v = board.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError("board %r is %r; expected an integer >= 1" % (key, v))
    return v


class DeviceLoop:
    """Serves protocol v1 requests for one HAL.

    Args:
        board: parsed board file (max_drive, max_batch, max_out, max_frame; optional "cache_bytes", the
            RESULT pool size, default room for two of the largest RESULTs).
        hal: the board's HAL (pnn_fw.hal.make_hal).
        device_id: the id HELLO reports (and the MQTT topic uses).
        runner: a LayerRunner; built from the board limits when None.
        boot_counter: the file boot_id keeps its boot counter in (main.py: "boot_count" in /); None: none.
    """

    def __init__(self, board: dict, hal, device_id: str, runner=None, boot_counter=None) -> None:
        max_drive = _board_int(board, "max_drive")
        max_batch = _board_int(board, "max_batch")
        max_out = _board_int(board, "max_out")
        self.max_frame = _board_int(board, "max_frame")
        self.payload_max = max_payload(self.max_frame)
        if self.payload_max < 256:
            raise ValueError("board max_frame %d is too small for protocol v1" % self.max_frame)
        self.hal = hal
        self.device_id = device_id
        self.boot = boot_id(boot_counter)
        # Largest RESULT this board can produce, + CRC room: byte-stream framing appends the CRC in place.
        self._result_max = min(self.payload_max, 2 * max_batch * max_out + messages.RUN_OVERHEAD) + CRC_LEN
        pool = _board_int(board, "cache_bytes", 2 * self._result_max)
        if pool < self._result_max:
            raise ValueError("board cache_bytes %d cannot hold one RESULT (%d)" % (pool, self._result_max))
        # The biggest buffer first, while the freshly collected heap still has room that big in one piece.
        self.pool = Packer(bytearray(pool))
        self.runner = runner if runner is not None else LayerRunner(hal, max_drive, max_batch, max_out)
        self.caps = {
            "dac_bits": hal.dac_bits,
            "adc_bits": hal.adc_bits,
            "max_drive": max_drive,
            "max_batch": max_batch,
            "max_out": max_out,
            "max_codes": messages.max_codes(self.max_frame),
            "drive_widths": [1, 2] if hal.dac_bits <= 8 else [2],
            "min_rate": hal.min_rate,
            "max_rate": hal.max_rate,
            "max_oversample": MAX_OVERSAMPLE,
            "max_settle": MAX_SETTLE,
            "max_frame": self.max_frame,
            "cache": CACHE_ENTRIES,
            "cache_bytes": pool,
            "max_ping": MAX_PING,
            "rest_code": hal.rest_code,
            "hal": hal.info(),
        }
        self._default_rest = hal.rest_code
        self.tx = Packer(bytearray(TX_SMALL + CRC_LEN))
        self._entries = []  # [request id, start, length] of kept RESULTs, oldest first
        self._pool_pos = 0
        self.action = None
        self.counts = {"requests": 0, "errors": 0, "runs": 0, "replays": 0}

    # --- entry points for transports -------------------------------------------------------------

    def handle(self, payload) -> tuple:
        """Serve one request payload (bytes-like).

        Returns:
            (buffer, start, n): the response payload is buffer[start : start + n], and buffer has
            CRC_LEN writable bytes after it. Valid until the next call.
        """
        self.counts["requests"] += 1
        req_id = None
        try:
            try:
                m = decode_request(payload)
            except DecodeError as e:
                raise ProtocolError(errors.BAD_PAYLOAD, str(e))
            if not isinstance(m, dict):  # (check_request says so too; this narrows the type)
                raise ProtocolError(errors.BAD_PAYLOAD, "payload is not a msgpack map")
            t, req_id = messages.check_request(m)
            if t == messages.RUN:
                return self._run(m, req_id)
            if t == messages.HELLO:
                return self._send(
                    messages.hello(req_id, self.device_id, FW_VERSION, self.hal.board, self.caps, self.boot)
                )
            if t == messages.PING:
                data = m.get("data")
                if data is not None and not isinstance(data, memoryview):
                    raise ProtocolError(errors.BAD_FIELD, "ping 'data' must be bin", req_id)
                if data is not None and len(data) > MAX_PING:
                    raise ProtocolError(errors.OUT_OF_RANGE, "ping data over %d bytes" % MAX_PING, req_id)
                return self._send(messages.pong(req_id, data, self.boot))
            if t == messages.CONFIG:
                return self._config(m, req_id)
            if t == messages.RESET:
                return self._reset(m, req_id)
            # REPL: the transport leaves the protocol after sending this acknowledgement
            self.action = ACTION_REPL
            return self._send(messages.ack(messages.REPL, req_id))
        except ProtocolError as e:
            return self._error(e.req_id, e.code, e.msg)
        except MemoryError:
            return self._error(req_id, errors.INTERNAL, "out of memory")
        except Exception as e:  # the loop must outlive any bug: report it and keep serving
            return self._error(req_id, errors.INTERNAL, "%s: %s" % (type(e).__name__, e))

    def frame_error(self, code: int) -> tuple:
        """The ERROR (id nil) answering a frame the transport could not deliver (BAD_CRC, ...)."""
        self.counts["requests"] += 1
        return self._error(None, code, _FRAME_TEXT.get(code, "bad frame"))

    # --- requests --------------------------------------------------------------------------------

    def _run(self, m: dict, req_id: int) -> tuple:
        for e in self._entries:
            if e[0] == req_id:
                self.counts["replays"] += 1
                return self.pool.buf, e[1], e[2]
        drive, batch, n_drive, rate, oversample, settle, n_out, width = messages.check_run(m, self.caps, req_id)
        try:
            resp, period_us, overruns = self.runner.run(
                drive, batch, n_drive, rate, oversample, settle, n_out, width
            )
        except ValueError as e:  # e.g. a drive code above the DAC's range: nothing was played
            raise ProtocolError(errors.OUT_OF_RANGE, str(e), req_id)
        # The RESULT's exact size (its fields packed around an empty blob) lets the ring evict no more
        # than it must.
        k = 2 * batch * n_out
        self.tx.reset(0, TX_SMALL)
        self.tx.pack(messages.result(req_id, b"", batch, n_out, period_us, overruns))
        size = self.tx.n - 2 + (2 if k < 0x100 else 3 if k < 0x10000 else 5) + k
        start = self._claim(size + CRC_LEN)
        p = self.pool
        p.reset(start, size)
        p.pack(messages.result(req_id, resp, batch, n_out, period_us, overruns))
        self._entries.append([req_id, start, p.n])
        self._pool_pos = start + p.n + CRC_LEN
        self.counts["runs"] += 1
        return p.buf, start, p.n

    def _claim(self, need: int) -> int:
        """Room for `need` bytes in the RESULT pool (a ring): evict the kept RESULTs it overlaps."""
        start = self._pool_pos
        if start + need > len(self.pool.buf):
            start = 0
        end = start + need
        kept = []
        for e in self._entries:
            if e[1] < end and start < e[1] + e[2] + CRC_LEN:
                continue
            kept.append(e)
        while len(kept) >= CACHE_ENTRIES:
            kept.pop(0)
        self._entries = kept
        return start

    def _settings(self) -> dict:
        return {"rest_code": self.hal.rest_code}

    def _config(self, m: dict, req_id: int) -> tuple:
        new = m.get("set")
        if new is not None:
            if not isinstance(new, dict):
                raise ProtocolError(errors.BAD_FIELD, "config 'set' must be a map", req_id)
            for key in new:  # check everything first: all or nothing
                if key not in messages.CONFIG_KEYS:
                    raise ProtocolError(errors.BAD_FIELD, "unknown config key %r" % key, req_id)
            dac_max = (1 << self.hal.dac_bits) - 1
            rest = messages.get_int(new, "rest_code", 0, dac_max, req_id, self.hal.rest_code)
            self.hal.rest_code = rest
        return self._send(messages.config(req_id, self._settings()))

    def _reset(self, m: dict, req_id: int) -> tuple:
        hard = m.get("hard")
        if hard is not None and hard is not True and hard is not False:
            raise ProtocolError(errors.BAD_FIELD, "reset 'hard' must be true or false", req_id)
        if hard:
            if self.hal.board == "sim":
                raise ProtocolError(errors.UNSUPPORTED, "the simulator has no hard reset", req_id)
            self.action = ACTION_HARD_RESET
        self._entries = []
        self._pool_pos = 0  # as after boot: the ring starts again at its beginning
        self.hal.rest_code = self._default_rest
        return self._send(messages.ack(messages.RESET, req_id))

    # --- responses -------------------------------------------------------------------------------

    def _send(self, msg: dict) -> tuple:
        p = self.tx
        p.reset(0, TX_SMALL)
        p.pack(msg)
        return p.buf, 0, p.n

    def _error(self, req_id, code: int, text: str) -> tuple:
        self.counts["errors"] += 1
        if len(text) > 200:
            text = text[:200]
        return self._send(messages.error(req_id, code, text))


_FRAME_TEXT = {
    errors.BAD_CRC: "frame CRC32 mismatch",
    errors.BAD_FRAME: "broken COBS frame (truncated?)",
    errors.TOO_LONG: "frame longer than max_frame: dropped",
}
