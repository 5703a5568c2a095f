"""What can go wrong with a device, split by what the caller should do about it.

Callers match these by type, never by message text. `UserError` marks the failures a person mends
(a wrong address or password, a board without pnn firmware, another protocol version): the CLI prints
their one-line message; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can mend; the message is one line saying what is wrong and how to mend it."""


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


class CapabilityError(UserError, ValueError):
    """The device cannot do what the URL asks (drive longer than it holds, rate out of range, ...)."""


class ProtocolVersionError(CapabilityError):
    """The board speaks another protocol version: flash matching firmware, or install the matching pnn."""


class NoSuchDevice(DeviceUnavailable):
    """The address names nothing (no such serial port): fatal on the first connect, retried after."""


class PortNotFound(NoSuchDevice, UserError):
    """No serial port at that path: check the name and the cable."""


class BrokerRefused(LinkDown, UserError):
    """The MQTT broker turned the user name and password down: give the broker's own."""


class NotPnnFirmware(UserError, ConnectionError):
    """Something answers on the port, but not the pnn firmware (a bare REPL, other bytes, silence): flash it."""


def caused_by(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """`error` itself or the first exception of type `kind` it was raised from (its __cause__ chain)."""
    seen = 0
    while error is not None and seen < 16:  # (a chain is short; the bound guards against a cycle)
        if isinstance(error, kind):
            return error
        error, seen = error.__cause__, seen + 1
    return None


def kind_of(error: BaseException) -> str:
    """The name of the typed failure behind `error` that tells a person what to do ("" if none): for
    records such as `pnn devices` rows, which carry it as text."""
    for kind in (ProtocolVersionError, BrokerRefused, PortNotFound, NotPnnFirmware):
        if caused_by(error, kind) is not None:
            return kind.__name__
    return ""
