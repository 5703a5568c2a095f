"""Serial transport: protocol frames (pnn_protocol's COBS + CRC framing) over a USB CDC port or pty.

serialx gives asyncio streams that never block the event loop; a write watchdog still bounds how
long a send may wait for the port to drain, because a board that stops reading (crashed, halted in
the REPL) would otherwise hold the sender forever. An unplugged port ends the link (LinkDown) and
the Device core reopens it when it reappears.
"""

from __future__ import annotations

import asyncio
from collections import deque
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


class SerialTransport(Transport):
    """A framed byte stream on `url.target` (e.g. /dev/ttyACM0, /dev/pts/5)."""

    def __init__(self, url: DeviceURL) -> None:
        self.url, self.path = url, url.target
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = FrameDecoder(HOST_MAX_FRAME)
        self._ready: deque[dict[str, Any]] = deque()
        self.bad_frames = 0

    async def open(self) -> None:
        try:
            self._reader, self._writer = await serialx.open_serial_connection(url=self.path, baudrate=self.url["baud"])
        except FileNotFoundError as e:
            raise PortNotFound(f"no serial port {self.path}") from e
        except (OSError, serialx.SerialException) as e:
            raise LinkDown(f"cannot open {self.path}: {e}") from e
        self._decoder.reset()
        self._ready.clear()
        await self._write(b"\x00")  # ends any partial frame the board holds (SPEC section 7)

    async def _write(self, data: bytes) -> None:
        if self._writer is None:
            raise LinkDown(f"{self.path} is not open")
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), WRITE_WATCHDOG_S)
        except TimeoutError:
            raise LinkDown(f"{self.path}: the board stopped reading (write blocked {WRITE_WATCHDOG_S:g} s)") from None
        except (OSError, serialx.SerialException, ConnectionError) as e:
            raise LinkDown(f"{self.path}: write failed: {e}") from e

    async def send(self, msg: dict[str, Any]) -> None:
        await self._write(frame(_wire.encode(msg)))

    async def recv(self) -> dict[str, Any]:
        while not self._ready:
            if self._reader is None:
                raise LinkDown(f"{self.path} is not open")
            try:
                data = await self._reader.read(65_536)
            except (OSError, serialx.SerialException) as e:
                raise LinkDown(f"{self.path}: read failed: {e}") from e
            if not data:
                raise LinkDown(f"{self.path}: port closed")
            for res in self._decoder.feed(data):
                if isinstance(res, int):  # BAD_CRC / BAD_FRAME / TOO_LONG: that frame only is lost
                    self.damaged()
                    continue
                try:
                    self._ready.append(_wire.decode(bytes(res)))
                except ProtocolError:
                    self.damaged()
        return self._ready.popleft()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()  # never wait on a board that stopped reading
