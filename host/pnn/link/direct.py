"""One RUN on the caller's own thread: a synchronous Device call with no hand-off to the asyncio loop.

A plain torch caller waits for each reply. Through the background loop that costs two thread
hand-offs per request (the caller's thread to the loop's and back), about ten times the Python work
of the request itself. So when nothing else is in flight, the loop lends its serial port
(SerialTransport.lend: its reader paused) and the caller writes the RUN and reads the reply itself,
with the link's own estimators (round trip, board pace, loss) and the rules of the loop's
RequestTable (pnn.link._requests):

- every re-send keeps the request's id: the board's RESULT cache answers a re-sent RUN it already ran;
- a damaged frame (received damaged, or the board's BAD_CRC / BAD_FRAME / TOO_LONG) re-sends at once
  once every send so far drew its frame, so re-sends never multiply;
- a timer from the RTT estimate plus the board's time for the RUN, backed off past the expiries the
  measured silent-loss rate explains; give-up by time (`give_up`), never by a count;
- an ERROR that re-sending cannot cure fails the call with DeviceError.

What it cannot finish (the port fails, or `give_up` passes) it hands to the loop with the request's
id (AsyncDevice.adopt), which reconnects (HELLO, boot-id check, configuration) and re-sends it like
any request in flight, waiting up to `patience`. A link whose frames go missing without a sign (where
a PING behind each RUN pays, LossMeter) and calls of more than one request take the loop's way.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from pnn_protocol import errors, messages
from pnn_protocol.errors import ProtocolError

from . import loop as _loop
from . import wire
from .errors import DeviceError, LinkDown
from .serial import WRITE_WATCHDOG_S, SerialTransport
from .sync import Readable
from .timing import InFlight

if TYPE_CHECKING:
    from .client import AsyncDevice

log = logging.getLogger("pnn.link.client")  # the client's story: one logger for drops and re-sends

_FRAME_ERRORS = (errors.BAD_CRC, errors.BAD_FRAME, errors.TOO_LONG)  # the board could not read a frame
_TRANSIENT = (*_FRAME_ERRORS, errors.INTERNAL)  # (INTERNAL: its timer re-sends it)


class DirectPath:
    """The caller's-thread path of one AsyncDevice on a serial port (see the module's docstring).

    Attributes:
        calls: calls it served (the others took the loop's way). resends: its re-sends of them.
    """

    def __init__(self, dev: AsyncDevice) -> None:
        self.dev = dev
        self.transport: SerialTransport = dev.transport  # type: ignore[assignment]  (supported() checked it)
        self._one = threading.Lock()  # one call at a time: a second thread's call takes the loop's way
        self._ask = True  # False: the loop just refused to lend the port; the next call does not ask
        self.calls = self.resends = 0
        self._wait: Readable | None = None

    @staticmethod
    def supported(dev: AsyncDevice) -> bool:
        """Whether `dev`'s link can be lent to a caller's thread (a serial port)."""
        return isinstance(dev.transport, SerialTransport)

    def run(self, drive: np.ndarray) -> np.ndarray | None:
        """Measure `drive` float32 [b, n_in] (clipped to [0, 1] already) on this thread: responses
        float32 [b, n_out], or None (nothing sent) where the loop's way must take it: a link down or
        busy, more rows than one request carries, probes that pay, a call from the loop's own thread
        or beside another one."""
        dev = self.dev
        if (dev.cal is None or not dev.connected or dev._pending or not 0 < len(drive) <= dev.chunk_limit
                or _loop.on_loop_thread() or not self._one.acquire(blocking=False)):  # fmt: skip
            return None
        try:
            msg, ticks = dev.run_message(dev.cal.encode(drive, clipped=True).tobytes(), len(drive))
            if dev._loss.silent and dev._loss.probes_pay(dev._rto.rto + dev._pace.seconds(ticks)):
                return None  # silent losses: the loop's tail probes find them sooner than a timer
            req = InFlight(msg, None, ticks)  # type: ignore[arg-type]  (adopt gives it a future)
            fd = self._lease()
            if fd is None:
                return None
            try:
                dev._direct_ticks = ticks
                outcome = self._exchange(fd, req)
            finally:
                dev._direct_ticks = 0
                self.transport.end_direct()
        finally:
            self._one.release()
        if isinstance(outcome, LinkDown):  # the loop takes it over, its id kept
            log.info("%s: request %d handed to the link's loop (%s)", dev.id, msg["id"], outcome)
            return _loop.run(dev.adopt(req, outcome))
        if isinstance(outcome, BaseException):
            raise outcome
        self.calls += 1
        return dev._result(req, outcome)

    def _lease(self) -> int | None:
        """The port's file descriptor for this call; the loop is asked to lend it at most every other call
        while it refuses (it refuses while anything of its own is in flight)."""
        fd = self.transport.begin_direct()
        if fd is None and self._ask:
            self._ask = bool(_loop.run(self._lend()))
            return self.transport.begin_direct() if self._ask else None
        self._ask = True
        return fd

    async def _lend(self) -> bool:
        dev = self.dev
        return dev.connected and not dev._pending and not dev._spawned and self.transport.lend()

    # -- one exchange ---------------------------------------------------------------------------
    def _exchange(self, fd: int, req: InFlight) -> dict[str, Any] | BaseException:
        """Send `req` and read until its reply: the reply, a DeviceError, or LinkDown (hand it back)."""
        dev, data, resend, readable = self.dev, wire.encode_frame(req.msg), True, self._readable(fd)
        while True:
            if resend:
                self.resends += req.tries > 0
                self._arm(req)
                if (failed := self._write(fd, data)) is not None:
                    return failed
                resend = False
            now = time.monotonic()
            if now >= req.deadline:
                waited = now - req.first
                if waited > dev.url["give_up"] + dev._pace.seconds(req.ahead):
                    return LinkDown(f"{dev.id}: no reply to request {req.msg['id']} for {waited:.1f} s")
                req.expiries += 1
                req.settled += 1  # deemed lost
                dev._loss.observe("silent")
                dev._stats["retries"] += 1
                log.info("%s: no reply to request %d yet; re-sending (re-send %d)", dev.id, req.msg["id"], req.expiries)
                resend = True
                continue
            try:
                ready = readable(req.deadline - now)
                if not self.transport.lent:  # the loop closed the port meanwhile: its number may be reused
                    return LinkDown(f"{self.transport.path}: closed during the call")
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except (OSError, ValueError) as e:  # (ValueError: the port closed under this call)
                return LinkDown(f"{self.transport.path}: read failed: {e}")
            if not chunk:
                return LinkDown(f"{self.transport.path}: port closed")
            reply: dict[str, Any] | BaseException | None = None
            for res in self.transport.decoder.feed(chunk):
                got = self._take(req, res, reply is not None)
                if isinstance(got, str):
                    resend = True
                elif got is not None and reply is None:
                    reply = got
            if reply is not None:  # (a re-send asked for in the same read is moot)
                return reply

    def _readable(self, fd: int) -> Readable:
        """The port's waiter (made once per descriptor number: poll knows a descriptor by its number)."""
        if self._wait is None or self._wait.fd != fd:
            self._wait = Readable(fd)
        return self._wait

    def _arm(self, req: InFlight) -> None:
        """Count a send of `req` and set its deadline (RequestTable._arm's rule, with no loop timer)."""
        dev = self.dev
        req.sent = time.monotonic()
        req.first = req.first or req.sent
        req.tries += 1
        req.deadline = dev._deadline(req)

    def _write(self, fd: int, data: bytes) -> LinkDown | None:
        """Write a frame; a board that reads none of it for WRITE_WATCHDOG_S seconds is a dead link."""
        view, limit = memoryview(data), time.monotonic() + WRITE_WATCHDOG_S
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                left = limit - time.monotonic()
                if left <= 0:
                    return LinkDown(f"{self.transport.path}: the board stopped reading (write blocked "
                                    f"{WRITE_WATCHDOG_S:g} s)")  # fmt: skip
                select.select([], [fd], [], left)
            except (OSError, ValueError) as e:
                return LinkDown(f"{self.transport.path}: write failed: {e}")
        return None

    def _take(self, req: InFlight, res: Any, answered: bool) -> dict[str, Any] | BaseException | str | None:
        """One decoded frame: the reply to `req`, its error, "resend", or None (nothing for this call)."""
        dev = self.dev
        if not isinstance(res, int):
            try:
                msg = wire.decode(res)
            except ProtocolError:
                res = errors.BAD_FRAME
        if isinstance(res, int):  # it arrived damaged: it was this request's reply, or a stale one
            self.transport.bad_frames += 1
            return None if answered else self._damaged(req, "fast_resends")
        dev._last_rx = now = time.monotonic()
        rid, t = msg.get("id"), msg.get("t")
        if rid is None:
            dev._stats["errors" if t == messages.ERROR else "stale"] += 1
            if t == messages.ERROR and msg.get("code") in _FRAME_ERRORS and not answered:
                return self._damaged(req, "fast_resends")  # the board could not read one of its sends
            return None
        if rid != req.msg["id"]:
            dev._stats["stale"] += 1  # a late reply to an earlier request
            return None
        if answered:
            dev._stats["duplicates"] += 1
            return None
        if t != messages.ERROR:
            self._answered(req, msg, now)
            return msg
        dev._stats["errors"] += 1
        code = msg.get("code")
        if code in _FRAME_ERRORS:  # it reached the board damaged
            log.info("%s: request %d arrived damaged (%s); re-sending", dev.id, rid, errors.name(code))
            return self._damaged(req, "retries")
        if code not in _TRANSIENT:
            return DeviceError(f"{dev.id}: {errors.name(code)}: {msg.get('msg', '')}", code)
        return None  # INTERNAL: its timer re-sends it

    def _damaged(self, req: InFlight, counter: str) -> str | None:
        """A frame this request drew was lost: re-send once every send of it is accounted for."""
        self.dev._loss.observe("damaged")
        req.settled += 1
        if req.settled < req.tries:
            return None  # other sends of it are yet to be answered
        self.dev._stats[counter] += 1
        req.expiries = 0  # the link is alive (it just carried a frame): no reason to back off
        return "resend"

    def _answered(self, req: InFlight, msg: dict[str, Any], now: float) -> None:
        """Time the reply (Karn's rule: only a request sent once), as RequestTable._answered does."""
        dev = self.dev
        if t := msg.get("period_us"):
            dev._pace.reported(t)
        if req.tries == 1:
            dev._time_reply(req, now)
        dev._loss.observe("ok")
        dev._replied_at = now
