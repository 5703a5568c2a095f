"""What can go wrong with a device, split by what the caller should do about it."""

from __future__ import annotations


class DeviceUnavailable(ConnectionError):
    """The device cannot answer now (link down, reconnecting, retries used up): try another, or later."""


class LinkDown(DeviceUnavailable):
    """The transport lost its link (unplugged port, broker gone, heartbeat unanswered)."""


class OutageError(DeviceUnavailable):
    """Every board of a run stayed unreachable for `patience` seconds: the run stops (after its checkpoint)."""


class DeviceError(RuntimeError):
    """The device refused a request (an ERROR reply that re-sending would not change).

    Attributes:
        code: the protocol error code (see protocol/SPEC.md), or None when the host raised it.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class CapabilityError(ValueError):
    """The device cannot do what the URL asks (drive longer than it holds, rate out of range, ...)."""


class NoSuchDevice(DeviceUnavailable):
    """The address names nothing (no such serial port): fatal on the first connect, retried after."""
