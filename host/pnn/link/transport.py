"""The small interface every link implements: open, send a message, receive the next one, close.

Messages are the protocol's decoded dicts (protocol/SPEC.md). A transport only moves them: the
Device core above it owns request ids, timeouts, retries, heartbeats and reconnects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Transport(ABC):
    """A message link to one board.

    `recv` raises `LinkDown` when the link is gone (port closed, broker lost, board offline); frames
    that arrive damaged are dropped and counted in `bad_frames`, and the link keeps going.
    """

    bad_frames: int = 0

    @abstractmethod
    async def open(self) -> None:
        """Establish the link; raise LinkDown (with the reason) if it cannot be made now."""

    @abstractmethod
    async def send(self, msg: dict[str, Any]) -> None:
        """Send one message; raise LinkDown if the link is gone."""

    @abstractmethod
    async def recv(self) -> dict[str, Any]:
        """The next message from the board; raise LinkDown if the link is gone."""

    @abstractmethod
    async def close(self) -> None:
        """Release the link (idempotent; never raises)."""
