"""What answers on a serial port: pnn firmware, a bare MicroPython REPL, other bytes, or nothing.

`knock(port)` sends HELLO first; pnn firmware answers it (and says its board, firmware and protocol
versions). If nothing frames back, a CR + Ctrl-C goes out and a bare MicroPython REPL answers with its
`>>>` prompt. `leave_protocol(port)` asks running firmware to go back to the REPL (its Ctrl-C is off:
0x03 is data in frames; protocol/SPEC.md "REPL"). Both talk through the one synchronous client's
StreamLink (pnn.link.sync): raw bytes, because a REPL's text and the protocol's frames share the port.
Used by `pnn flash` (before and after copying) and by the diagnosis of a board that does not answer.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import Any

from pnn_protocol import errors, frame, messages

from ..link.errors import PortNotFound, PortUnavailable
from ..link.sync import StreamLink, messages_in, open_serial
from ..link.wire import encode


@dataclass
class Knock:
    """What answered on a serial port.

    Attributes:
        kind: "pnn" (our firmware, same protocol), "version" (pnn firmware of another protocol
            version), "repl" (a MicroPython REPL), "garbage" (bytes that are neither), "silent".
        reply: the decoded reply to HELLO, when a frame came back.
        raw: every byte read (for messages: a REPL's traceback, say).
        seconds: how long the answer took from the HELLO going out (a measured round trip for "pnn").
    """

    kind: str
    reply: dict[str, Any] = field(default_factory=dict)
    raw: bytes = b""
    seconds: float = 0.0

    def describe(self) -> str:
        """One phrase for messages: who answered."""
        r = self.reply
        if self.kind == "pnn":
            return f"pnn firmware {r.get('fw')!s} (board {r.get('board')!s}, device {r.get('device')!s})"
        if self.kind == "version" and r.get("t") == messages.ERROR:
            return f"pnn firmware of another protocol version ({r.get('msg')!s}; this host speaks {messages.VERSION})"
        if self.kind == "version":
            return f"pnn firmware speaking protocol {protocol_of(r)!s} (this host speaks {messages.VERSION})"
        return {"repl": "a MicroPython REPL", "garbage": "bytes that are neither pnn frames nor a REPL",
                "silent": "nothing"}[self.kind]  # fmt: skip


def protocol_of(reply: dict[str, Any]) -> Any:
    """The protocol version a reply claims: HELLO's `proto`, else its envelope `v`."""
    return reply.get("proto", reply.get("v"))


def _is_repl(data: bytes) -> bool:
    return b">>>" in data or b"raw REPL" in data or b"Traceback" in data or data.rstrip().endswith(b"\n>")


def _request(link: StreamLink, msg: dict[str, Any]) -> None:
    """One request, after a 0x00 that ends whatever partial frame the board holds (SPEC section 7)."""
    link.write_raw(b"\x00" + frame(encode(msg)))


def knock(port: str, timeout: float = 1.0, interrupt: bool = True) -> Knock:
    """Find out what answers on `port`: pnn firmware, a MicroPython REPL, or nothing.

    Args:
        port: the serial port path (or COMn).
        timeout: seconds to wait for each answer (HELLO, then the REPL prompt).
        interrupt: send Ctrl-C before looking for a REPL prompt, to stop a program the board runs.
            Not while our firmware may still be starting: before it switches Ctrl-C off, that
            would stop it.

    Raises:
        PortNotFound, PortUnavailable: the port cannot be opened (missing, no permission, busy).
    """
    link = open_serial(port)
    # A fresh id, and wait for the reply to it: a board that was knocked while it booted answers the
    # HELLOs queued then first, and a stale HELLO says who is there but not how fast it answers (a
    # devices re-probe sized from one got ~0.2 s for a board seconds behind its backlog).
    req_id = random.randrange(1 << 20, 1 << 30)
    try:
        _request(link, messages.hello_request(req_id))
        t0 = time.monotonic()
        raw = link.read_raw(timeout, lambda d: _answers(d, req_id))
        found = _firmware(raw)
        if found is None:  # not our firmware (or not yet): a REPL prints a prompt after CR
            link.write_raw(b"\r\x03" if interrupt else b"\r")
            raw += link.read_raw(timeout, lambda d: _is_repl(d) or _firmware(d) is not None)
            found = _firmware(raw)  # a late HELLO: the firmware was still starting
        if found is not None:
            return dataclasses.replace(found, seconds=time.monotonic() - t0)
        if _is_repl(raw):
            return Knock("repl", {}, raw)
        return Knock("garbage" if raw else "silent", {}, raw)
    finally:
        link.close()


def _answers(raw: bytes, req_id: int) -> bool:
    """True once `raw` holds the reply to request `req_id`, or an answer that no reply will follow
    (pnn firmware of another protocol version)."""
    found = _firmware(raw)
    return found is not None and (found.kind == "version" or any(m.get("id") == req_id for m in messages_in(raw)))


def _firmware(raw: bytes) -> Knock | None:
    """A Knock of kind "pnn" or "version" when `raw` holds a reply that says who is there."""
    answer = _answer(messages_in(raw))
    if answer is None:
        return None
    ok = answer.get("t") == messages.HELLO and answer.get("v") == protocol_of(answer) == messages.VERSION
    return Knock("pnn" if ok else "version", answer, raw)


def _answer(replies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The reply that says who is there: a HELLO, or an ERROR about the protocol version (other
    ERRORs, e.g. about bytes left over from an earlier knock, say nothing about the board)."""
    for r in replies:
        if r.get("t") == messages.HELLO or r.get("v") != messages.VERSION:
            return r
        if r.get("t") == messages.ERROR and r.get("code") == errors.BAD_VERSION:
            return r
    return None


def leave_protocol(port: str, timeout: float = 2.0) -> bool:
    """Send the REPL request; True once the firmware acknowledged it (it is then back at the REPL)."""
    link = open_serial(port)
    try:
        _request(link, messages.repl(2))
        raw = link.read_raw(timeout, lambda d: any(m.get("t") == messages.REPL for m in messages_in(d)))
        acked = any(m.get("t") == messages.REPL for m in messages_in(raw))
        if acked:  # let the board print its goodbye and prompt before mpremote opens the port
            link.read_raw(0.3, _is_repl)
        return acked
    finally:
        link.close()


def wait_for_firmware(port: str, seconds: float = 10.0) -> Knock:
    """Knock until the firmware answers HELLO (a board's USB port vanishes for a moment while it resets).

    Returns the last Knock: kind "pnn" on success; "repl" when main.py stopped at the REPL (its raw bytes
    hold the traceback); "silent" when nothing answered in time.
    """
    deadline = time.monotonic() + seconds
    last = Knock("silent")
    while time.monotonic() < deadline:
        try:
            last = knock(port, timeout=1.0, interrupt=False)
        except (PortUnavailable, PortNotFound):
            time.sleep(0.2)
            continue
        if last.kind in ("pnn", "version", "repl"):
            return last
    return last
