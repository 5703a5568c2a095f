"""The one synchronous protocol-v1 client for one board: the probe's, flash's, the link bench's and the tests'.

Two links with the same three calls (send a payload, receive payloads, close): `StreamLink` frames over a
byte stream (a pyserial port or a raw pty fd; `open_serial` opens a port), `MqttLink` publishes on
pnn/<id>/req and reads pnn/<id>/resp through paho-mqtt, driving paho's loop itself (no network thread, no
queue hand-off). `SyncClient` numbers requests and matches replies by id. A StreamLink also moves raw
bytes (`write_raw`, `read_raw`) and `messages_in` finds the frames among them: what `pnn flash` needs to
tell pnn firmware from a bare MicroPython REPL on the same port. The asyncio runtime used for training is
pnn.devices (Device, DevicePool); this one is for tools and tests that want one plain request at a time.
"""

from __future__ import annotations

import errno
import math
import os
import select
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pnn_protocol import FrameDecoder, ProtocolError, errors, messages, unpackb

from .errors import PortNotFound, PortUnavailable
from .wire import decode, encode, frame, frame_reader, run_request  # C codecs: pnn_protocol's bytes (tested)

DEFAULT_MAX_FRAME = 1 << 20  # what a host accepts before it has read the device's HELLO


class LinkTimeout(TimeoutError):
    """No reply in time."""


class Readable:
    """Waits until a file descriptor has something to read (or has hung up): poll(2) on Linux, a poll
    object made once (a select() call builds and parses three lists each time: twice the cost, on every
    reply), select(2) elsewhere (macOS's poll refuses terminals). Timeouts round up to whole milliseconds
    under poll: a wait never ends early.

    Args:
        fd: the descriptor (by number, as select and poll know it).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._poll = select.poll() if sys.platform.startswith("linux") else None
        if self._poll is not None:
            self._poll.register(fd, select.POLLIN)

    def __call__(self, timeout: float) -> bool:
        """True once the descriptor is readable (a read will not block), False after `timeout` seconds."""
        if self._poll is None:
            return bool(select.select([self.fd], [], [], max(0.0, timeout))[0])
        return bool(self._poll.poll(max(0, math.ceil(timeout * 1000))))


class StreamLink:
    """Frames over a byte stream: a pyserial `Serial` or an int file descriptor (a pty master).

    Args:
        port: the open stream.
        max_frame: largest frame accepted from the device.
    """

    def __init__(self, port: Any, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.port = port
        self._fd: int | None = port if isinstance(port, int) else _fileno(port)
        self._readable = Readable(self._fd) if self._fd is not None else None
        self.decoder = frame_reader(max_frame)
        self.frame_errors: list[int] = []  # framing errors seen in what the device sent

    def send(self, payload: bytes) -> None:
        self.write_raw(frame(payload))

    def write_raw(self, data: bytes | memoryview) -> None:
        """Bytes as they are: a REPL's Ctrl-C, a frame after a 0x00 that ends any partial one, broken frames."""
        if self._fd is None:
            self.port.write(data)
            return
        while data:
            try:
                n = os.write(self._fd, data)
            except BlockingIOError:  # a non-blocking port (open_serial's) whose buffer is full: wait for room
                select.select([], [self._fd], [])
                continue
            data = memoryview(data)[n:] if n < len(data) else b""  # (as a rule all of it went at once)

    def _read_some(self, timeout: float) -> bytes:
        """What the stream holds within `timeout` s (b"" if nothing came). Raises ConnectionError if it closed."""
        if self._readable is None:  # a port without a file descriptor (pyserial on Windows): its own timed read
            self.port.timeout = timeout
            return self.port.read(max(1, self.port.in_waiting))
        if not self._readable(timeout):
            return b""
        data = os.read(self._readable.fd, 65536)
        if not data:
            raise ConnectionError("serial link closed")
        return data

    def read_raw(self, seconds: float, until: Callable[[bytes], bool] | None = None) -> bytes:
        """Bytes as they come, undecoded (a REPL prompt, a traceback, frames among text), until `until(bytes so
        far)` holds or `seconds` pass; without `until`, the first bytes that come. The frame decoder does not
        see them."""
        data = b""
        deadline = time.monotonic() + seconds
        while not (until(data) if until is not None else data):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            data += self._read_some(left)
        return data

    def recv(self, timeout: float) -> list[bytes]:
        """Payloads that complete within `timeout` s (waits for at least one); [] on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            data = self._read_some(left) if left > 0 else b""
            if not data:
                return []
            out = []
            for ev in self.decoder.feed(data):
                if isinstance(ev, int):
                    self.frame_errors.append(ev)
                else:
                    out.append(bytes(ev))
            if out:
                return out

    def close(self) -> None:
        if not isinstance(self.port, int):
            self.port.close()


def _fileno(port: Any) -> int | None:
    """The port's file descriptor (select works on it), or None where it has none (pyserial on Windows)."""
    try:
        return port.fileno()
    except (AttributeError, OSError):
        return None


def open_serial(path: str, baud: int = 115200, max_frame: int = DEFAULT_MAX_FRAME) -> StreamLink:
    """A StreamLink on a serial port (pyserial, raw and non-blocking).

    Raises:
        PortNotFound: no such port. PortUnavailable: it cannot be opened (no permission, busy). Each
            message says how to mend it.
    """
    import serial

    try:
        port = serial.Serial(path, baud, timeout=0)
    except (OSError, serial.SerialException) as e:
        code = getattr(e, "errno", None)  # (pyserial's SerialException carries the OS errno)
        if code == errno.ENOENT:
            raise PortNotFound(f"no serial port {path}: check the name (`pnn devices` lists the boards it finds; "
                               "on Linux usually /dev/ttyUSB0 or /dev/ttyACM0) and the USB cable") from None
        if code == errno.EACCES:
            raise PortUnavailable(f"no permission to open {path}: on Linux run `sudo usermod -aG dialout $USER` "
                                  "and log in again") from None
        raise PortUnavailable(f"cannot open {path}: {e} (is another program, e.g. a serial monitor, using it?)") from None
    return StreamLink(port, max_frame)


def messages_in(data: bytes) -> list[dict[str, Any]]:
    """The msgpack maps framed in raw bytes, of any protocol version (text and damaged frames between them
    are skipped): what a knock reads back when it does not yet know who answers."""
    out = []
    for ev in FrameDecoder(DEFAULT_MAX_FRAME).feed(data):
        if isinstance(ev, int):
            continue
        try:
            msg = unpackb(bytes(ev))
        except Exception:  # noqa: BLE001 - a frame that is not our msgpack is garbage, whatever the decoder says
            continue
        if isinstance(msg, dict):
            out.append(msg)
    return out


class MqttLink:
    """Request/response topics of one device through a broker (paho-mqtt, loop driven by recv).

    Args:
        host, port: the broker.
        device_id: the device's id (topics pnn/<id>/...).
        user, password: broker credentials, or None.
        timeout: seconds to wait for the connection.
    """

    def __init__(self, host: str, port: int, device_id: str, user: str | None = None,
                 password: str | None = None, timeout: float = 5.0) -> None:  # fmt: skip
        import paho.mqtt.client as mqtt

        self.req, self.resp, self.status_topic = messages.topics(device_id)
        self.status: str | None = None
        self._inbox: deque[bytes] = deque()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if user:
            c.username_pw_set(user, password)
        c.on_message = self._on_message
        c.connect(host, port, keepalive=30)
        c.socket().setsockopt(6, 1, 1)  # TCP_NODELAY: small requests go out now
        c.subscribe([(self.resp, 0), (self.status_topic, 0)])
        self.client = c
        deadline = time.monotonic() + timeout
        while self.status is None and time.monotonic() < deadline:  # the retained status comes first
            c.loop(0.05)

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if msg.topic == self.resp:
            self._inbox.append(msg.payload)
        else:
            self.status = msg.payload.decode(errors="replace")

    def send(self, payload: bytes) -> None:
        self.client.publish(self.req, payload)

    def recv(self, timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while not self._inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self.client.loop(min(left, 0.1))
        out = list(self._inbox)
        self._inbox.clear()
        return out

    def close(self) -> None:
        self.client.disconnect()


class SyncClient:
    """One request at a time: numbers it, sends it, returns the reply with its id.

    Args:
        link: a StreamLink or MqttLink.
        timeout: seconds to wait for each reply.
    """

    def __init__(self, link: Any, timeout: float = 2.0) -> None:
        self.link = link
        self.timeout = timeout
        self._next_id = 1
        self.caps: dict[str, Any] = {}
        self.unmatched: list[dict] = []  # replies not asked for yet (other ids, ERRORs without an id)

    def new_id(self) -> int:
        i = self._next_id
        self._next_id = (i + 1) & messages.MAX_ID
        return i

    def request(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send msg (its "id" is used as given) and return the checked reply carrying that id.

        Raises:
            LinkTimeout: no reply in time. ProtocolError: the reply is malformed.
        """
        self.link.send(encode(msg))
        return self.wait_for(msg["id"], timeout)

    def wait_for(self, req_id: int | None, timeout: float | None = None) -> dict[str, Any]:
        """The next reply whose id is req_id (None: the next reply of any id), oldest first.

        Replies that arrive for other ids wait in `unmatched` for a later call.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for k, m in enumerate(self.unmatched):
                if req_id is None or m.get("id") == req_id:
                    return self.unmatched.pop(k)
            left = deadline - time.monotonic()
            payloads = self.link.recv(left) if left > 0 else []
            if not payloads:
                raise LinkTimeout(f"no reply to request {req_id} in time")
            for p in payloads:
                self.unmatched.append(decode(p))

    def hello(self) -> dict[str, Any]:
        """HELLO; remembers the device's caps (and its max_frame for a stream link)."""
        r = self.request(messages.hello_request(self.new_id()))
        _raise_if_error(r)
        self.caps = r["caps"]
        if isinstance(self.link, StreamLink) and self.link.decoder.max_frame != self.caps["max_frame"]:
            self.link.decoder = frame_reader(self.caps["max_frame"])
        return r

    def ping(self, data: bytes | None = None) -> dict[str, Any]:
        return _raise_if_error(self.request(messages.ping(self.new_id(), data)))

    def run(self, drive: bytes, batch: int, n_drive: int, rate: int, oversample: int = 1, settle: int = 0,
            n_out: int | None = None, req_id: int | None = None, drive_width: int = 2) -> dict[str, Any]:  # fmt: skip
        """RUN -> RESULT (drive: little-endian uint16 codes, or uint8 with drive_width=1 where the board's
        caps offer it). Raises ProtocolError for an ERROR reply."""
        rid = self.new_id() if req_id is None else req_id
        msg = run_request(rid, drive, batch, n_drive, rate, oversample, settle, n_out, drive_width)
        timeout = self.timeout + batch * (settle + n_drive) * oversample / rate
        return _raise_if_error(self.request(msg, timeout))

    def close(self) -> None:
        self.link.close()


def _raise_if_error(reply: dict[str, Any]) -> dict[str, Any]:
    if reply["t"] == messages.ERROR:
        raise ProtocolError(reply["code"], f"device says {errors.name(reply['code'])}: {reply['msg']}",
                            reply.get("id"))  # fmt: skip
    return reply
