"""The small interface every link implements: open, send a message, receive the next one, close.

Messages are the protocol's decoded dicts (protocol/SPEC.md). A transport only moves them: the
Device core above it owns request ids, timeouts, retries, heartbeats and reconnects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class Transport(ABC):
    """A message link to one board.

    `recv` raises `LinkDown` when the link is gone (port closed, broker lost, board offline); frames
    that arrive damaged are dropped and counted in `bad_frames`, and the link keeps going; each one
    also calls `on_bad_frame` (the Device core re-sends what is in flight at once: fast retransmit).
    """

    bad_frames: int = 0
    on_bad_frame: Callable[[], None] | None = None
    sync_send: bool = False  # send_nowait works (the core then sends a new request without a task)
    # most copies of a RUN sent at once where losses make them pay: 1 on a byte stream, whose copies queue
    # behind each other on one wire and in a board's small receive buffer (see LossMeter.copies)
    max_copies: int = 1

    def damaged(self) -> None:
        """A frame arrived damaged: count it and tell the core."""
        self.bad_frames += 1
        if self.on_bad_frame is not None:
            self.on_bad_frame()

    @abstractmethod
    async def open(self) -> None:
        """Establish the link; raise LinkDown (with the reason) if it cannot be made now."""

    @abstractmethod
    async def send(self, msg: dict[str, Any]) -> None:
        """Send one message; raise LinkDown if the link is gone."""

    def send_nowait(self, msg: dict[str, Any]) -> None:
        """Send one message without waiting (only where `sync_send`); raise LinkDown if the link is gone."""
        raise NotImplementedError(f"{type(self).__name__} sends only with `await send()`")

    async def serve(self, deliver: Callable[[dict[str, Any]], None]) -> None:
        """Hand each message to `deliver` until the link goes (LinkDown). A link that decodes as bytes
        arrive overrides this to call `deliver` from there, saving a task wake-up per message."""
        while True:
            deliver(await self.recv())

    @abstractmethod
    async def recv(self) -> dict[str, Any]:
        """The next message from the board; raise LinkDown if the link is gone."""

    @abstractmethod
    async def close(self) -> None:
        """Release the link (idempotent; never raises)."""
