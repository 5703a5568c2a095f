"""The Device core's table of requests in flight: sending, timers, re-sends and routing replies.

A mixin of AsyncDevice (pnn.link.client), which owns the connection (supervisor, HELLO, heartbeat,
outages) and the state these methods share with it: `_pending` (id -> InFlight), the RTT estimator
`_rto`, the board's pace `_pace`, `_stats`, and the link flags (`connected`, `_link_up`).
What it guarantees: a re-send keeps the request's id (the board's RESULT cache answers it without
running it again), the first reply per id is the only one used, a damaged frame re-sends at once
(fast retransmit) but never more than it can have cost, and a request unanswered for `give_up`
seconds on a live link declares the link down. Where the link loses each message on its own and
most are lost (a broker drops a damaged PUBLISH with no sign), a RUN goes out as several copies at
once (LossMeter.copies): the board runs the first to arrive and replays its RESULT for the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pnn_protocol import errors, messages

from .errors import DeviceError, LinkDown
from .timing import BoardPace, InFlight, LossMeter, RetransmitTimer
from .transport import Transport
from .url import DeviceURL

log = logging.getLogger("pnn.link.client")  # the client's own story: one logger for drops, re-sends, reconnects

# ERROR codes (with the request's id) that re-sending can cure: at once if the frame was damaged,
# else (INTERNAL) when its timer runs out, backing off, until `give_up`.
_TRANSIENT = (errors.BAD_CRC, errors.BAD_FRAME, errors.TOO_LONG, errors.INTERNAL)
# ERROR codes (id nil) about a frame the board could not read: some request in flight is lost.
_FRAME_ERRORS = (errors.BAD_CRC, errors.BAD_FRAME, errors.TOO_LONG)


class RequestTable:
    """Requests in flight and their replies (a mixin: AsyncDevice sets every attribute named here)."""

    id: str
    url: DeviceURL
    transport: Transport
    _pending: dict[int, InFlight]
    _rto: RetransmitTimer
    _pace: BoardPace
    _loss: LossMeter
    _replied_at: float
    _ticks_in_flight: int
    _next_id: Callable[[], int]
    _stats: dict[str, Any]
    _spawned: set[asyncio.Task[None]]
    _link_up: bool
    _last_rx: float
    _last_error: BaseException | None
    _connected: asyncio.Event
    _lost: asyncio.Event
    _broken: asyncio.Event

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _fail_pending(self, error: BaseException, which: Any) -> None:
        for req in self._pending.values():
            if which(req) and not req.fut.done():
                req.fut.set_exception(error)
                req.fut.exception()  # its awaiter still gets it; one cancelled meanwhile must not leave it "never retrieved"

    def _spawn(self, coro: Any) -> None:
        """Run a re-send in the background (only re-sends get a task; the first send is awaited)."""
        task = asyncio.ensure_future(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawn_done)

    def _spawn_done(self, task: asyncio.Task[None]) -> None:
        self._spawned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._last_error = task.exception()
            log.warning("%s: re-send failed: %r", self.id, task.exception())

    async def _send(self, req: InFlight, copies: int = 0) -> None:
        """(Re-)send one request (`copies` of it, 0: as many as pay) and arm its timer; a failed send
        drops the link."""
        copies = copies or self._copies(req)
        if not self._arm(req, copies):
            return
        try:
            for _ in range(copies):
                await self.transport.send(req.msg)
            for i in range(self._probes(req)):
                await self.transport.send(self._tail_probe(req, i + 1))
        except LinkDown as e:
            self._drop_link(e)

    def _copies(self, req: InFlight) -> int:
        """Copies of `req` to send at once: 1 but for a RUN on a link whose messages are lost one by one
        (Transport.max_copies), where the measured losses make more pay (LossMeter.copies)."""
        most = self.transport.max_copies
        if most <= 1 or req.control or not req.retransmit or req.expiries > self._loss.free_expiries():
            return 1  # (backing off: expiries past what the losses explain, the board may be gone)
        board = self._pace.tick_s * req.ticks
        return self._loss.copies((self._rto.srtt or self._rto.rto) + board, most, self._rto.rto + 1.25 * board)

    def _probes(self, req: InFlight) -> int:
        """Tail probes behind `req`: one at most, behind RUNs only, on a byte stream (there a damaged
        probe draws a BAD_CRC that cannot be told from its request's, and re-sends it); where messages
        are lost one by one with no sign (Transport.max_copies > 1), as many as pay, behind the HELLO too."""
        if not req.retransmit:
            return 0
        if self.transport.max_copies <= 1:
            return 0 if req.control else min(1, self._loss.probes(req.deadline - req.sent))
        return self._loss.probes(req.deadline - req.sent, min(4, self.transport.max_copies))

    def _tail_probe(self, req: InFlight, nth: int) -> dict[str, Any]:
        """A PING to send right behind the RUN `req`, on a link that loses requests or replies with no
        sign: the board answers in order, so a PONG that overtakes the RESULT says the RUN or its RESULT
        was lost, one round trip after the send instead of a whole timeout (see _overtaken). Sent only
        while silent losses cost more waiting than probes cost the board: loss rate x timeout > PING time,
        and a second (`nth`) while the first may be lost too (LossMeter.probes)."""
        loop = asyncio.get_running_loop()
        probe = InFlight(messages.ping(self._next_id()), loop.create_future(), control=True, retransmit=False)
        probe.ahead, probe.sent, probe.tries, probe.batch = self._ticks_in_flight, loop.time(), 1, 1
        self._pending[probe.msg["id"]] = probe
        probe.fut.add_done_callback(lambda _f: self._forget(probe))
        probe.first = -float(nth)  # (marks the nth tail probe: its answer measures what it cost, see _answered)
        self._loss.ponged.tried()
        probe.timer = loop.call_at(req.deadline, self._forget, probe)  # unanswered by then: the RUN's timer's turn
        self._stats["probes"] += 1
        return probe.msg

    def _resend(self, req: InFlight, copies: int = 0) -> None:
        """Send `req` again, in a task: on the next turn of the loop, so that a reply already on its way
        in the same read (a burst of damaged frames, each asking for re-sends) cancels it (_send checks)."""
        self._spawn(self._send(req, copies))

    def _send_now(self, req: InFlight) -> None:
        """The first send of a request where the link can send without waiting: in this call, no task."""
        copies = self._copies(req)
        if self._arm(req, copies):
            try:
                for _ in range(copies):
                    self.transport.send_nowait(req.msg)
                for i in range(self._probes(req)):
                    self.transport.send_nowait(self._tail_probe(req, i + 1))
            except LinkDown as e:
                self._drop_link(e)

    def _arm(self, req: InFlight, copies: int = 1) -> bool:
        """Count a send of `copies` of `req` and set its timer (False: it is answered already, nothing to send)."""
        if req.fut.done():
            return False
        loop = asyncio.get_running_loop()
        req.sent = loop.time()
        req.first = req.first or req.sent
        req.tries += copies
        req.batch = copies
        if req.retransmit:
            if not req.control:
                self._loss.answered.tried(copies)
                self._stats["copies"] += copies - 1
            if req.timer is not None:
                req.timer.cancel()
            req.deadline = self._deadline(req)
            req.timer = loop.call_at(req.deadline, self._expire, req)
        return True

    def _deadline(self, req: InFlight) -> float:
        """When the send of `req` made at req.sent is deemed lost: the RTO, backed off by this request's
        expiries past what the measured silent losses explain, plus the board's time for the work ahead."""
        link = self._rto.rto  # (within max_rto already: the timer's own bound)
        if req.expiries:  # (no backoff arithmetic for a request that never expired: nearly every one)
            backoff = max(0, req.expiries - self._loss.free_expiries())
            link = min(self.url["max_rto"], link * 2 ** min(backoff, 16))
        return req.sent + link + self._pace.seconds(req.ahead)

    def _time_reply(self, req: InFlight, now: float, fast_down: bool = False) -> None:
        """Learn from the reply to a request sent once (Karn's rule: a re-sent request's timing is
        ambiguous, and so is a copy's, a replay behind others): the board's pace and the link's RTT."""
        total = now - req.sent  # the link's round trip + the board's work ahead
        if req.ticks:
            self._pace.observed(total - (self._rto.srtt or 0.0), req.ahead)
        self._rto.sample(total - req.ahead * self._pace.tick_s, fast_down=fast_down)

    def _expire(self, req: InFlight) -> None:
        """A request's timer ran out: re-send it (backing off), or after `give_up` declare the link down."""
        req.timer = None
        if req.fut.done() or not (self.connected or (req.control and self._link_up)):
            return  # a link that is down re-sends everything when it comes back
        waited = asyncio.get_running_loop().time() - req.first
        if not req.control and waited > self.url["give_up"] + self._pace.seconds(req.ahead):
            self._drop_link(LinkDown(f"{self.id}: no reply to request {req.msg['id']} for {waited:.1f} s"))
            return
        req.expiries += 1
        req.settled += req.batch  # its last send deemed lost, every copy of it
        self._loss.observe("silent")
        self._stats["retries"] += 1
        log.info("%s: no reply to request %d yet; re-sending (re-send %d)", self.id, req.msg["id"], req.expiries)
        self._resend(req)

    def _on_bad_frame(self) -> None:
        """A damaged frame reached this host: it was some request's reply, so re-send what is in flight."""
        self._resend_in_flight()

    def _drew(self, req: InFlight, now: float, timed: bool) -> None:
        """A frame (its damaged reply; `timed` False: the board's quick BAD_CRC, which says nothing of
        how long its reply takes) answered `req`. A control request (the HELLO) whose every earlier send
        is accounted for drew it with its last send: that times a round trip, so that a lost HELLO is
        waited out for the link's round trip, not the URL's whole `timeout` (RUNs keep Karn's rule:
        their timers, of board time too, make a late reply likelier than a lost one)."""
        if timed:
            self._time_control(req, now)
        req.settled += 1

    def _time_control(self, req: InFlight, now: float) -> None:
        """A round trip from a control request's last send, when its every earlier send is accounted for."""
        if req.control and req.settled == req.tries - 1:
            self._rto.sample(now - req.sent, fast_down=req.expiries == 0)  # (after an expiry: a guess)

    def _resend_in_flight(self, timed: bool = True) -> None:
        """One frame was lost (damaged on its way here, or the board's BAD_CRC for one of ours): re-send
        one request, the one waiting longest since its last send (the board answers in order).

        One re-send per damaged frame, never all in flight: each re-send brings at most one more
        damaged frame, so on a lossy cable re-sends die out instead of multiplying until nothing else
        gets through (congestion collapse). Whatever else is lost, the next answer (_overtaken) or its
        own timer re-sends.
        """
        if not self._link_up:
            return
        now = asyncio.get_running_loop().time()
        self._loss.observe("damaged")
        recent = (self._rto.srtt or 0.0) / 2  # sent since the damaged frame could have left: not it
        live = [r for r in self._pending.values()
                if not r.fut.done() and r.retransmit and (r.control or self.connected)]  # fmt: skip
        oldest: InFlight | None = None
        if len(live) == 1:  # (the HELLO, or window=1): the frame answers one of its sends
            self._drew(live[0], now, timed)
            if live[0].settled >= live[0].tries:  # else other sends of it are yet to be answered
                oldest = live[0]
        for req in live if len(live) > 1 else ():
            if now - req.sent >= recent and (oldest is None or req.sent < oldest.sent):
                oldest = req
        if oldest is not None:
            self._stats["fast_resends"] += 1
            oldest.expiries = 0  # the link is alive (it just carried a frame): no reason to back off
            oldest.sent = now  # (the send sets it again) so that a second damaged frame in this read picks another
            # a lone request: every copy of its last send is accounted for, send as many again; else one
            # frame lost, one copy: re-sends never multiply
            self._resend(oldest, 0 if len(live) == 1 else 1)

    async def _read(self) -> None:
        """Route every message from the board until the link goes."""
        await self.transport.serve(self._route)

    def _route(self, msg: dict[str, Any]) -> None:
        """Hand a reply to the request waiting for its id; count the rest."""
        self._last_rx = time.monotonic()
        rid, t = msg.get("id"), msg.get("t")
        if t == messages.RESULT:
            self._loss.answered.hit()  # (a late one too: it answers one copy sent, for the ratio of copies answered)
        elif t == messages.PONG:
            self._loss.ponged.hit()  # (a late one too: the probe was not lost, only slow)
        if rid is None:
            self._stats["errors" if t == messages.ERROR else "stale"] += 1
            if t == messages.ERROR and msg.get("code") in _FRAME_ERRORS:
                self._resend_in_flight(timed=False)
            return
        req = self._pending.get(rid)
        if req is None:
            self._stats["stale"] += 1  # a late reply to a finished request
        elif req.fut.done():
            self._stats["duplicates"] += 1
        elif t == messages.ERROR:
            self._stats["errors"] += 1
            code = msg.get("code")
            if code in _FRAME_ERRORS:  # it arrived damaged: re-send it now
                self._drew(req, asyncio.get_running_loop().time(), False)
                self._loss.observe("damaged")
                if req.settled < req.tries:
                    return  # other sends of it are yet to be answered
                self._stats["retries"] += 1
                log.info("%s: request %d arrived damaged (%s); re-sending", self.id, rid, errors.name(code))
                self._resend(req)
            elif req.control:
                req.fut.set_result(msg)  # HELLO / CONFIG say what the refusal means for them
            elif code not in _TRANSIENT:
                req.fut.set_exception(DeviceError(f"{self.id}: {errors.name(code)}: {msg.get('msg', '')}", code))
        else:
            self._answered(req, msg)

    def _answered(self, req: InFlight, msg: dict[str, Any]) -> None:
        if req.timer is not None:
            req.timer.cancel()
            req.timer = None
        now = asyncio.get_running_loop().time()
        if t := msg.get("period_us"):
            self._pace.reported(t)
        if req.tries == req.batch:  # its first send: a reply overtook what was sent before it
            if req.tries == 1:
                self._time_reply(req, now, fast_down=req.control and not req.ahead)
            self._overtaken(req)
        else:
            self._time_control(req, now)
        if req.retransmit:  # (probes are no sends of their own: they would halve the measured rate)
            self._loss.observe("ok")
            self._replied_at = now
        elif req.first < 0 and self._replied_at > req.sent:  # a tail probe behind a RUN answered meanwhile
            self._loss.probe_cost((now - self._replied_at) / -req.first)
        req.fut.set_result(msg)

    def _overtaken(self, answered: InFlight) -> None:
        """The board answers in order: a request sent before this one and still unanswered was lost
        (it or its reply); re-send it now rather than wait out its timer (TCP's fast retransmit)."""
        for req in self._pending.values():
            if req is not answered and req.retransmit and not req.fut.done() and req.sent < answered.sent:
                self._loss.observe("silent")
                self._stats["fast_resends"] += 1
                req.expiries = 0  # the link is alive (it just carried a later reply): no reason to back off
                req.settled = req.tries  # its sends so far are deemed lost
                self._resend(req)

    def _drop_link(self, reason: BaseException) -> None:
        """A send failed or a request went unanswered too long: tell the supervisor to reconnect."""
        self._last_error = reason
        self._connected.clear()
        self._lost.set()
        self._broken.set()

    async def _control(self, msg: dict[str, Any], ahead: int = 0) -> dict[str, Any]:
        """A control request (HELLO, CONFIG, a timed PING), re-sent until answered while the link is open.

        ahead: board ticks queued before its reply (a PING behind RUNs), added to its deadline."""
        req = InFlight(msg, asyncio.get_running_loop().create_future(), control=True)
        req.ahead = ahead
        self._pending[msg["id"]] = req
        try:
            await self._send(req)
            return await req.fut
        finally:
            self._forget(req)

    async def _probe(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One heartbeat probe, sent once: the heartbeat counts the misses."""
        req = InFlight(msg, asyncio.get_running_loop().create_future(), control=True, retransmit=False)
        req.ahead = self._ticks_in_flight  # its PONG waits behind those ticks: not link time
        self._pending[msg["id"]] = req
        try:
            await self._send(req)
            async with asyncio.timeout(timeout):  # (3.11's wait_for can drop a cancel that meets the PONG)
                return await req.fut
        finally:
            self._forget(req)

    def _forget(self, req: InFlight) -> None:
        self._pending.pop(req.msg["id"], None)
        if req.timer is not None:
            req.timer.cancel()
            req.timer = None
