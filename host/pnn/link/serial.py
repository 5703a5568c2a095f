"""Serial transport: protocol frames (pnn_protocol's COBS + CRC framing) over a USB CDC port or pty.

serialx gives an asyncio transport that never blocks the event loop. Frames are decoded as the
bytes arrive (in the transport's data_received) and handed straight to the Device core
(`serve`), so a reply costs no task wake-up; a send writes at once and returns without waiting.
A write watchdog still bounds how long unsent bytes may wait in the buffer, because a board that
stops reading (crashed, halted in the REPL) would otherwise hold them forever. An unplugged port
ends the link (LinkDown) and the Device core reopens it when it reappears.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import serialx

from pnn_protocol import FrameDecoder, frame
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
        self._decoder = FrameDecoder(HOST_MAX_FRAME)
        self._ready: deque[dict[str, Any]] = deque()
        self._deliver: Callable[[dict[str, Any]], None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # recv() waiting for a message
        self._end: asyncio.Future[None] | None = None  # fails with LinkDown when the port goes
        self._watchdog: asyncio.TimerHandle | None = None
        self.bad_frames = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._decoder.reset()
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
        try:
            self._port.write(data)
        except (OSError, serialx.SerialException, ConnectionError, RuntimeError) as e:
            raise LinkDown(f"{self.path}: write failed: {e}") from e

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
        self._write(frame(_wire.encode(msg)))

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
        if self._end is not None and not self._end.done():
            self._end.set_exception(LinkDown(f"{self.path} closed"))
            self._end.exception()
        if port is not None:
            port.abort()  # never wait on a board that stopped reading
