"""Serial transport: protocol frames (pnn_protocol's COBS + CRC framing) over a USB CDC port or pty.

serialx gives an asyncio transport that never blocks the event loop. Frames are decoded as the
bytes arrive (in the transport's data_received) and handed straight to the Device core
(`serve`), so a reply costs no task wake-up; a send writes at once and returns without waiting.
A write watchdog still bounds how long unsent bytes may wait in the buffer, because a board that
stops reading (crashed, halted in the REPL) would otherwise hold them forever. An unplugged port
ends the link (LinkDown) and the Device core reopens it when it reappears.

The loop can also lend the open port to one caller's thread (`lend`, then `begin_direct` /
`end_direct` around each call; pnn.link.direct), its reader paused meanwhile: a synchronous caller
then writes and reads the port itself, without two thread hand-offs per request. A loop that needs
the port (any write: a heartbeat, another thread's request) takes it back at once between calls,
or holds its writes until the call under way ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import serialx

from pnn_protocol import FrameDecoder
from pnn_protocol.errors import ProtocolError

from . import wire as _wire
from .errors import LinkDown, PortNotFound
from .transport import Transport
from .url import DeviceURL

# The host's receive bound: larger than any board's max_frame, so only garbage is ever dropped.
HOST_MAX_FRAME = 1 << 20
WRITE_WATCHDOG_S = 2.0


class _Frames(asyncio.Protocol):
    """The asyncio protocol under SerialTransport: bytes in, and the end of the port."""

    def __init__(self, owner: SerialTransport) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        if self.owner._frames is self:  # (a port closed meanwhile may still deliver its last bytes)
            self.owner._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._frames is self:  # not the end of a newer port
            self.owner._ended(LinkDown(f"{self.owner.path}: {'port closed' if exc is None else f'read failed: {exc}'}"))

    def pause_writing(self) -> None:  # the write buffer passed its high-water mark: start the watchdog
        if self.owner._frames is self:
            self.owner._stalled()

    def resume_writing(self) -> None:
        if self.owner._frames is self:
            self.owner._drained()


class SerialTransport(Transport):
    """A framed byte stream on `url.target` (e.g. /dev/ttyACM0, /dev/pts/5)."""

    sync_send = True  # a write never waits (the watchdog bounds a full buffer): the core may send in a callback

    def __init__(self, url: DeviceURL) -> None:
        self.url, self.path = url, url.target
        self._port: Any = None  # serialx's asyncio transport while open
        self._frames: _Frames | None = None  # its protocol (callbacks from an older port are ignored)
        self._decoder = _wire.frame_reader(HOST_MAX_FRAME)
        self._ready: deque[dict[str, Any]] = deque()
        self._deliver: Callable[[dict[str, Any]], None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # recv() waiting for a message
        self._end: asyncio.Future[None] | None = None  # fails with LinkDown when the port goes
        self._watchdog: asyncio.TimerHandle | None = None
        self.bad_frames = 0
        # lending the port to a caller's thread: the flags change under the lock, from either thread
        self._lease = threading.Lock()
        self._lent = False  # the loop's reader is paused: a caller's thread owns the port
        self._in_use = False  # a direct call is under way
        self._want_back = False  # the loop needs the port: the call under way hands it back when done
        self._held: list[bytes] = []  # the loop's writes waiting for that
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._decoder.reset()
        self._unlend()
        self._ready.clear()
        self._end = loop.create_future()
        self._frames = _Frames(self)
        try:
            self._port, _ = await serialx.create_serial_connection(loop, lambda: self._frames, self.path,
                                                                   baudrate=self.url["baud"])  # fmt: skip
        except FileNotFoundError as e:
            raise PortNotFound(f"no serial port {self.path}") from e
        except (OSError, serialx.SerialException) as e:
            raise LinkDown(f"cannot open {self.path}: {e}") from e
        self._write(b"\x00")  # ends any partial frame the board holds (SPEC section 7)

    def _write(self, data: bytes) -> None:
        if self._port is None or self._end is None or self._end.done():
            raise LinkDown(f"{self.path} is not open")
        if self._lent and not self._take_back():
            self._held.append(data)  # a direct call is under way: this goes out when it ends
            return
        try:
            self._port.write(data)
        except (OSError, serialx.SerialException, ConnectionError, RuntimeError) as e:
            raise LinkDown(f"{self.path}: write failed: {e}") from e

    # -- lending the port to a caller's thread (pnn.link.direct) -------------------------------------
    def lend(self) -> bool:
        """On the loop: pause reading and lend the port to a caller's thread until the loop needs it.
        False where it cannot: not open and served, bytes still to write, messages not yet delivered,
        or a port with no file descriptor."""
        port, fd = self._port, getattr(self._port, "_fileno", None)
        if (port is None or not isinstance(fd, int) or self._end is None or self._end.done() or self._ready
                or self._deliver is None or port.get_write_buffer_size()):  # fmt: skip
            return False
        port.pause_reading()
        with self._lease:
            self._lent, self._want_back, self._fd, self._loop = True, False, fd, asyncio.get_running_loop()
        return True

    @property
    def lent(self) -> bool:
        """Whether the port is lent to a caller's thread (False under a direct call: it is closing)."""
        return self._lent

    @property
    def decoder(self) -> _wire.FrameReader | FrameDecoder:
        """The frame decoder (its partial frame carries over between the loop's reads and a direct call's)."""
        return self._decoder

    def begin_direct(self) -> int | None:
        """On the caller's thread: the lent port's file descriptor for one call (end it with end_direct),
        or None: not lent, or the loop asked for it back."""
        with self._lease:
            if not self._lent or self._want_back:
                return None
            self._in_use = True
            return self._fd

    def end_direct(self) -> None:
        """On the caller's thread: the call is over; a loop that asked for the port meanwhile gets it."""
        with self._lease:
            self._in_use = False
            back = self._want_back and self._lent
        if back and self._loop is not None:
            self._loop.call_soon_threadsafe(self._take_back)

    def _take_back(self) -> bool:
        """On the loop: the port is the loop's again (False: a direct call is under way; it hands the
        port back when it ends), and the writes held meanwhile go out."""
        with self._lease:
            if self._in_use:
                self._want_back = True
                return False
            lent, self._lent, self._want_back = self._lent, False, False
        if lent and self._port is not None:
            self._port.resume_reading()
        held, self._held = self._held, []
        try:
            for data in held:
                self._write(data)
        except LinkDown as e:
            self._ended(e)
        return True

    def _unlend(self) -> None:
        """The port is closing: a lease ends (a direct call under way fails on the closed port)."""
        with self._lease:
            self._lent = self._want_back = False
            self._held = []

    def _stalled(self) -> None:
        """The write buffer is full (as StreamWriter.drain would wait): the board has that long to read it."""
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(WRITE_WATCHDOG_S, self._ended, LinkDown(
                f"{self.path}: the board stopped reading (write blocked {WRITE_WATCHDOG_S:g} s)"))  # fmt: skip

    def _drained(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def send_nowait(self, msg: dict[str, Any]) -> None:
        self._write(_wire.encode_frame(msg))

    async def send(self, msg: dict[str, Any]) -> None:
        self.send_nowait(msg)

    def _received(self, data: bytes) -> None:
        for res in self._decoder.feed(data):
            if isinstance(res, int):  # BAD_CRC / BAD_FRAME / TOO_LONG: that frame only is lost
                self.damaged()
                continue
            try:
                msg = _wire.decode(res)
            except ProtocolError:
                self.damaged()
                continue
            if self._deliver is not None:
                self._deliver(msg)
            else:
                self._ready.append(msg)
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(None)

    def _ended(self, reason: LinkDown) -> None:
        self._drained()
        self._unlend()
        if self._end is not None and not self._end.done():
            self._end.set_exception(reason)
            self._end.exception()  # read here too: serve() / recv() may not be waiting on it
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._port is not None:
            self._port.abort()

    async def recv(self) -> dict[str, Any]:
        while not self._ready:
            if self._end is None or self._end.done():
                if self._end is not None and self._end.exception() is not None:
                    raise self._end.exception()  # type: ignore[misc]
                raise LinkDown(f"{self.path} is not open")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._ready.popleft()

    async def serve(self, deliver: Callable[[dict[str, Any]], None]) -> None:
        """Hand every message to `deliver` as it is decoded, until the port goes (LinkDown)."""
        end = self._end
        if end is None:
            raise LinkDown(f"{self.path} is not open")
        self._deliver = deliver
        try:
            while self._ready:
                deliver(self._ready.popleft())
            await asyncio.shield(end)
        finally:
            self._deliver = None

    async def close(self) -> None:
        port, self._port, self._frames = self._port, None, None
        self._drained()
        self._unlend()
        if self._end is not None and not self._end.done():
            self._end.set_exception(LinkDown(f"{self.path} closed"))
            self._end.exception()
        if port is not None:
            port.abort()  # never wait on a board that stopped reading
