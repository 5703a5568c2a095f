"""The asyncio Device client: one core over every transport (serial, MQTT, in-process sim).

What it guarantees:
- HELLO on every (re)connect, re-sent until answered; the board's capabilities are checked against
  the URL, and a different board answering at the same address is refused (its twin would be wrong).
  The client's configuration (CONFIG `set`, e.g. the URL's rest_code) is applied after each HELLO.
- Request ids from a 32-bit counter that starts at a random value, so a restarted host never
  collides with the ids a board still holds in its duplicate cache.
- `window` requests in flight, each one future and one timer (no task per request). A request's
  deadline is the link's retransmission timeout (RFC 6298: smoothed RTT + 4 x deviation, backoff,
  bounds) plus the board's time for the work queued ahead of its reply (see _timing).
- Re-sends keep the id: the firmware's RESULT cache answers instead of running again, and the first
  reply per id is the only one used. A damaged frame (the board's BAD_CRC / BAD_FRAME / TOO_LONG with
  id nil, or one this host receives) re-sends what is in flight at once (fast retransmit); a lone
  request (the HELLO, window=1) once every send of it drew its frame, so re-sends never multiply. A
  link that loses frames with no sign gets a PING behind each RUN while that pays (_tail_probe); over
  MQTT, where each message is lost on its own, as many PINGs as pay, behind the HELLO too, and each RUN
  as the copies that pay at once (LossMeter.copies: same id, so the board runs it once).
- The HELLO is timed by the frames it draws, so a lost one waits a round trip, not the URL's timeout;
  timer expiries that the measured silent-loss rate explains do not back off (LossMeter).
- Give-up is by time (`give_up`), never by a count: a request unanswered that long on a live link, or
  `probes` heartbeats unanswered in a row, declare the link down.
- A link that drops is reopened with backoff; requests in flight are re-sent after the new HELLO
  (pool mode: handed back at once). They wait up to `patience` seconds, then fail with OutageError.
- A reboot behind a link that stayed up (HELLO / PONG `boot` changed, or the board's configuration
  found at its defaults) is noticed, logged, and the configuration re-applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections import deque
from typing import Any

import numpy as np

from pnn_protocol import errors, messages

from . import wire
from ._requests import RequestTable
from .codes import Calibration, Capabilities, boot_id
from .errors import CapabilityError, DeviceError, DeviceUnavailable, LinkDown, NoSuchDevice, OutageError
from .timing import BoardPace, InFlight, LossMeter, RetransmitTimer, Window
from .transport import Transport
from .url import DeviceURL

log = logging.getLogger(__name__)  # pnn.link.client: drops, reconnects, resends

_RESP = np.dtype("<u2")  # a RESULT's codes
_BACKOFF = (0.05, 2.0)  # first and longest pause between reconnect attempts, seconds


class AsyncDevice(RequestTable):
    """One board, asyncio API. `pnn.connect(url)` wraps it in the synchronous `Device`.

    Args:
        url: the parsed URL (n_in, n_out, rate, settle, window, timeout, give_up, heartbeat, ...).
        transport: the link to the board.
        patience: seconds requests wait through an outage (default: the URL's `patience`).
    """

    def __init__(self, url: DeviceURL, transport: Transport, *, check: bool = True,
                 patience: float | None = None) -> None:
        self.url, self.id, self.transport, self._check = url, url.id, transport, check
        self.n_in, self.n_out, self.window = url["n_in"], url["n_out"], url["window"]
        self.patience = url["patience"] if patience is None else patience
        self.hello: dict[str, Any] = {}
        self.caps: Capabilities | None = None
        self._limit, self._limit_of = 1, object()  # chunk_limit, and the caps it was worked out from
        self.cal: Calibration | None = None
        self.settings: dict[str, int] = {} if url["rest_code"] is None else {"rest_code": url["rest_code"]}
        self.boot: Any = None  # the board's boot id (HELLO / PONG `boot`), None if it states none
        self.down_since: float | None = None  # wall-clock time the link went down (None: up, or never up)
        self._ids = itertools.count(random.randrange(1, messages.MAX_ID // 2))
        self._pending: dict[int, InFlight] = {}
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._slots = Window(self.window)
        # RUNs in the order they took their slots: a slot comes free only when every older RUN is done
        # too, so the newest RUN in flight is never more than `window` ahead of the oldest unanswered
        # one, and the board's RESULT cache (window <= its `cache`) still holds a reply a re-send asks for
        self._runs: deque[InFlight] = deque()
        self._supervisor: asyncio.Task[None] | None = None
        self._broken = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()  # set by close(): ends every wait for the link
        self._link_up = False  # the transport is open and read: control requests (HELLO) may go
        self._fatal: BaseException | None = None
        self._last_error: BaseException | None = None
        self._fresh_hint = ""  # why the board looks freshly booted (set by a probe, used by the HELLO)
        self._last_rx = 0.0
        self._down_at = 0.0
        self._outage_timer: asyncio.TimerHandle | None = None
        self._spawned: set[asyncio.Task[None]] = set()
        self._ticks_in_flight = 0
        self._direct_ticks = 0  # board ticks of a RUN the caller's thread has in flight (pnn.link.direct)
        self._rto = RetransmitTimer(url["timeout"], url["min_rto"], url["max_rto"])
        self._pace = BoardPace(1.0 / url["rate"])
        self._loss = LossMeter()
        self._replied_at = 0.0  # loop time of the last reply to a request (a tail probe's cost is its lag)
        self._stats = dict(samples=0, requests=0, retries=0, fast_resends=0, duplicates=0, stale=0, errors=0,
                           reconnects=0, reboots=0, busy_s=0.0, overruns=0, probes=0, copies=0)  # fmt: skip
        self._first_send = self._last_reply = 0.0

    def _next_id(self) -> int:
        return next(self._ids) & messages.MAX_ID  # 32-bit, wrapping

    # -- state ----------------------------------------------------------------------------------
    @property
    def chunk_limit(self) -> int:
        """Most examples per request: the board's limit, or the URL's `chunk` if smaller."""
        caps = self.caps
        if caps is not self._limit_of:  # (worked out once per HELLO: every call asks)
            limit = caps.chunk_limit(self.n_in, self.n_out) if caps else 1
            self._limit, self._limit_of = min(limit, self.url["chunk"]) if self.url["chunk"] else limit, caps
        return self._limit

    async def wait_connected(self, timeout: float | None) -> bool:
        """Wait until the link is up (True) or `timeout` passes or the device fails for good (False)."""
        if self._fatal is not None or self._closing:
            return False
        if self.connected:
            return True
        if timeout is not None and timeout <= 0:
            return False
        waits = {asyncio.ensure_future(self._connected.wait()), asyncio.ensure_future(self._closed.wait())}
        try:  # close() ends the wait too: a request waiting through an outage must not outlive its device
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return self.connected and not self._closing

    def stats(self) -> dict[str, Any]:
        """Counters for the run plots: samples, samples_per_s, busy_s (board time), retries, ..."""
        span = self._last_reply - self._first_send
        s: dict[str, Any] = dict(self._stats)
        s.update(samples_per_s=s["samples"] / span if span > 0 else 0.0, connected=self.connected,
                 bad_frames=self.transport.bad_frames, board=self.hello.get("device", ""),
                 rto_s=self._rto.rto, tick_s=self._pace.tick_s, down_since=self.down_since)  # fmt: skip
        return s

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and HELLO; raises CapabilityError / ConnectionError (with the reason) if it cannot."""
        if self._supervisor is None:
            self._supervisor = asyncio.ensure_future(self._supervise())
        up = asyncio.ensure_future(self._connected.wait())
        await asyncio.wait({up, self._supervisor}, timeout=self.url["reconnect"], return_when=asyncio.FIRST_COMPLETED)
        up.cancel()
        if self.connected:
            return
        fatal, reason = self._fatal, self._last_error
        await self.close()
        if fatal is not None:
            raise fatal
        # `from reason`: callers match the cause by type (BrokerRefused, PortNotFound), never by its text
        raise ConnectionError(f"{self.id}: no answer within {self.url['reconnect']:g} s ({reason or 'no reply to HELLO'})") from reason

    @property
    def close_s(self) -> float:
        """The longest close() waits for the link's tasks and its transport: the most one exchange may take
        on this link (`max_rto`), as the transport may say goodbye (an MQTT DISCONNECT and its answer)."""
        return self.url["max_rto"]

    async def close(self) -> None:
        """Stop the link; requests still waiting (through an outage too) fail with DeviceUnavailable. Waits
        at most `close_s` in all: a task or transport that does not end when cancelled is left behind
        with a warning, never waited on for ever."""
        self._closing = True
        self._closed.set()  # wakes requests waiting for the link to come back
        deadline = time.monotonic() + self.close_s
        tasks = [t for t in (self._supervisor, *self._spawned) if t is not None]
        for task in tasks:
            task.cancel()
        await _within(tasks, deadline, f"{self.id}: the link's tasks")
        self._connected.clear()
        self._lost.set()
        if self._outage_timer is not None:
            self._outage_timer.cancel()
        self._fail_pending(DeviceUnavailable(f"{self.id}: closed"), lambda r: True)
        await _within([asyncio.ensure_future(self.transport.close())], deadline, f"{self.id}: closing its transport")

    async def _supervise(self) -> None:
        """Connect, serve until the link drops, back off, reconnect; until closed or a fatal error."""
        backoff, first = _BACKOFF[0], True
        while not self._closing:
            self._broken = asyncio.Event()
            tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._broken.wait())]
            try:
                self.transport.on_bad_frame = self._on_bad_frame
                await self.transport.open()
                self._link_up = True
                tasks.append(asyncio.ensure_future(self._read()))
                hello = asyncio.ensure_future(self._handshake())
                tasks.append(hello)
                # a reader that fails (board offline, port gone) or a failed send ends the attempt at once
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if not hello.done():
                    if tasks[1].done():
                        tasks[1].result()
                    raise LinkDown(f"{self._last_error}")
                hello.result()
                tasks.remove(hello)
                self._stats["reconnects"] += 0 if first else 1
                if first:
                    log.info("%s: connected to board %r", self.id, self.hello.get("device"))
                first, backoff = False, _BACKOFF[0]
                self._lost = asyncio.Event()
                self._connected.set()
                self._restored()
                if self.url["heartbeat"] > 0:
                    tasks.append(asyncio.ensure_future(self._heartbeat()))
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not tasks[0]:
                        task.result()
                raise LinkDown(f"{self._last_error}")
            except asyncio.CancelledError:  # only close() and the process's exit cancel it: no outage to report
                self._closing = True
                raise
            except (CapabilityError, DeviceError) as e:
                self._fatal = e
            except NoSuchDevice as e:
                if first:  # a mistyped port: say so now rather than after `reconnect` seconds
                    self._fatal = ConnectionError(str(e))
                    self._fatal.__cause__ = e  # (its type, for callers that match by type)
                self._last_error = e
            except (LinkDown, OSError, TimeoutError) as e:
                self._last_error = e
            except Exception as e:  # noqa: BLE001 - anything else a link throws: keep the reason, retry
                self._last_error = e
            finally:
                self._link_up = False
                self._lost_link()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.transport.close()
            if self._fatal is not None:
                self._fail_pending(self._fatal, lambda r: True)
                return
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(2 * backoff, _BACKOFF[1])

    def _lost_link(self) -> None:
        """The link is down: stop timers, hand back pool requests, start the outage clock."""
        self._connected.clear()
        self._lost.set()
        for req in self._pending.values():
            if req.timer is not None:
                req.timer.cancel()
                req.timer = None
        self._fail_pending(DeviceUnavailable(f"{self.id}: link lost with a request in flight ({self._last_error})"),
                           lambda r: r.fail_fast or r.control)  # fmt: skip
        if self.caps is not None and self.down_since is None and not self._closing:
            self.down_since, self._down_at = time.time(), time.monotonic()
            self._outage_timer = asyncio.get_running_loop().call_later(self.patience, self._outage)
            log.warning("%s: link down (%s); waiting up to %g s for it to come back", self.id, self._last_error,
                        self.patience)  # fmt: skip

    def _restored(self) -> None:
        """The link is up again: end the outage and re-send what waited through it."""
        if self._outage_timer is not None:
            self._outage_timer.cancel()
            self._outage_timer = None
        if self.down_since is not None:
            log.warning("%s: link back after %.1f s", self.id, time.monotonic() - self._down_at)
            self.down_since = None
        for req in list(self._pending.values()):
            if not req.control and not req.fut.done():
                req.first, req.expiries = 0.0, 0  # give-up and backoff start again on this link
                self._resend(req)

    def _outage(self) -> None:
        self._outage_timer = None
        self._fail_pending(self.outage_error(), lambda r: not r.control)

    def outage_error(self) -> OutageError:
        """The error of an outage that outlasted `patience` (it names the board and since when)."""
        since = time.strftime("%H:%M:%S", time.localtime(self.down_since)) if self.down_since else "the start"
        return OutageError(f"{self.id}: unreachable since {since} (patience {self.patience:g} s): {self._last_error}")

    async def _handshake(self) -> None:
        reply = await self._control(messages.hello_request(self._next_id()))
        if reply.get("t") != messages.HELLO:
            raise LinkDown(f"HELLO answered with {reply.get('t')!r}: {reply.get('msg', '')}")
        caps = Capabilities.from_hello(reply)
        if self._check:
            caps.check(self.url)
        if self.caps is not None and caps.device != self.caps.device:
            raise DeviceError(f"{self.id}: board {caps.device!r} answered where {self.caps.device!r} was; "
                              "reconnect to it by its own URL (its twin is different)")
        boot, why = boot_id(reply), self._fresh_hint
        if self.boot is not None and boot is not None and boot != self.boot:
            why = f"boot id {self.boot!r} -> {boot!r}"
        self.hello, self.caps, self.cal, self.boot = reply, caps, Calibration.for_device(caps, self.url), boot
        window, lowered = caps.window_for(self.url["window"], self.chunk_limit, self.n_out)
        if window != self.window:  # (said once: a reconnect to the same board keeps it)
            if lowered:
                log.warning("%s: %s", self.id, lowered)
            self.window = window
            self._slots.resize(window)
        if self.settings and boot is None and not why and self._stats["requests"]:
            # no boot id to tell by: a board back at its default settings has rebooted while we were away
            with contextlib.suppress(LinkDown):
                self._check_fresh(await self._control(messages.config_request(self._next_id())))
            why = self._fresh_hint
        if self.settings:
            await self.configure(self.settings, _handshake=True)
        if why:
            self._fresh_hint = ""
            self._stats["reboots"] += 1
            log.warning("%s: the board rebooted (%s)%s", self.id, why,
                        f"; configuration re-applied: {self.settings}" if self.settings else "")  # fmt: skip

    async def configure(self, settings: dict[str, int], *, _handshake: bool = False) -> dict[str, Any]:
        """Set board settings with CONFIG (e.g. {"rest_code": 128}); kept and re-applied on every connect.

        Returns the board's settings after the change. Raises DeviceError if the board refuses them.
        """
        if not _handshake and not self.connected:
            raise DeviceUnavailable(f"{self.id}: not connected")
        reply = await self._control(messages.config_request(self._next_id(), dict(settings)))
        if reply.get("t") != messages.CONFIG:
            code = reply.get("code")
            raise DeviceError(f"{self.id}: CONFIG {settings} refused: {errors.name(code)}: {reply.get('msg', '')}", code)
        self.settings = {**self.settings, **settings}
        return dict(reply.get("config") or {})

    async def _heartbeat(self) -> None:
        """Probe a silent link; `probes` unanswered in a row mean it is dead. A probe also notices a
        reboot: a changed boot id, or (a board that states none) its configuration back at defaults."""
        interval, misses = self.url["heartbeat"], 0
        while True:
            await asyncio.sleep(interval / 2)
            if time.monotonic() - self._last_rx < interval:
                misses = 0
                continue
            rid = self._next_id()
            probe = messages.config_request(rid) if self.settings and self.boot is None else messages.ping(rid)
            wait = max(interval, self._rto.rto) + self._pace.seconds(self._ticks_ahead())
            sent = time.monotonic()
            try:
                reply = await self._probe(probe, wait)
            except TimeoutError:
                if self._last_rx > sent:  # the board spoke meanwhile (only this probe was lost)
                    misses = 0
                    continue
                misses += 1
                if misses >= self.url["probes"]:
                    raise LinkDown(f"{self.id}: {misses} heartbeats unanswered") from None
                continue
            misses = 0
            self._check_fresh(reply)

    def _check_fresh(self, reply: dict[str, Any]) -> None:
        """Raise LinkDown (so the link re-does HELLO and CONFIG) if the board answers as freshly booted."""
        boot = boot_id(reply)
        if boot is not None and self.boot is not None and boot != self.boot:
            self._fresh_hint = f"boot id {self.boot!r} -> {boot!r}"
        elif reply.get("t") == messages.CONFIG:
            now = reply.get("config") or {}
            lost = {k: now.get(k) for k, v in self.settings.items() if now.get(k) != v}
            if lost:
                self._fresh_hint = f"its settings are back at {lost}, not {self.settings}"
        if self._fresh_hint:
            raise LinkDown(f"{self.id}: the board answers as freshly booted ({self._fresh_hint})")

    async def ping(self) -> float:
        """Round-trip time of one PING, seconds, from its first send to its PONG.

        Re-sent (same id) each time its retransmission timer runs out, as every request is, so a board
        that pauses past the measured round trip (a garbage collection on an emulated Pico) answers late
        instead of failing; unanswered for `give_up` s (beyond the board's queued work): TimeoutError.
        The heartbeat's probes are the ones sent once: it counts their misses.

        Raises:
            TimeoutError: no PONG within the give-up time. DeviceUnavailable: not connected.
        """
        if not self.connected:
            raise DeviceUnavailable(f"{self.id}: not connected")
        ahead = self._ticks_ahead()
        start = time.monotonic()
        async with asyncio.timeout(self.url["give_up"] + self._pace.seconds(ahead)):
            await self._control(messages.ping(self._next_id()), ahead)
        return time.monotonic() - start

    # -- measuring ------------------------------------------------------------------------------
    async def _wait_up(self, fail_fast: bool) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self.connected:
            return
        if fail_fast or self._closing:
            raise DeviceUnavailable(f"{self.id}: {'closed' if self._closing else f'link down ({self._last_error})'}")
        if self.down_since:
            left = self.patience - (time.monotonic() - self._down_at)
        else:  # a link dropped a moment ago (its outage clock not started yet) is an outage, not a first connect
            left = self.patience if self.caps is not None else self.url["reconnect"]
        if not await self.wait_connected(left):
            raise self._fatal or (DeviceUnavailable(f"{self.id}: closed") if self._closing else self.outage_error())

    async def _issue(self, drive: np.ndarray, fail_fast: bool) -> InFlight:
        """Take a window slot and send one RUN; the slot is freed when its future completes."""
        if self.cal is None:
            raise DeviceUnavailable(f"{self.id}: not connected yet (call open())")
        await self._wait_up(fail_fast)
        codes = self.cal.encode(drive).tobytes()
        await self._slots.take()
        if self._closing:  # a slot that came free as close() failed what was in flight: no RUN may follow it
            self._slots.release()
            raise DeviceUnavailable(f"{self.id}: closed")
        req = self._new_run(codes, len(drive), fail_fast)
        if self.connected:
            await self._send(req)
        elif fail_fast:
            req.fut.set_exception(DeviceUnavailable(f"{self.id}: link down ({self._last_error})"))
        return req

    def _ticks_ahead(self) -> int:
        """Board ticks queued ahead of a request sent now: the loop's RUNs and the caller's thread's."""
        return self._ticks_in_flight + self._direct_ticks

    def run_message(self, codes: bytes, batch: int) -> tuple[dict[str, Any], int]:
        """A RUN of `batch` examples of drive codes, with a fresh id, and its board ticks (any thread)."""
        assert self.cal is not None
        p = self.url.params
        msg = wire.run_request(self._next_id(), codes, batch, self.n_in, p["rate"], p["oversample"], p["settle"],
                               self.n_out, self.cal.drive_width)  # fmt: skip
        self._first_send = self._first_send or time.monotonic()
        return msg, batch * (p["settle"] + self.n_in) * p["oversample"]

    def _new_run(self, codes: bytes, batch: int, fail_fast: bool) -> InFlight:
        """The record of one RUN (its window slot taken), registered to receive its reply."""
        msg, ticks = self.run_message(codes, batch)
        return self._register(InFlight(msg, asyncio.get_running_loop().create_future(), ticks, fail_fast=fail_fast))

    def _register(self, req: InFlight) -> InFlight:
        """A RUN (its window slot taken) counted in flight and routed its reply; its slot frees when done."""
        self._ticks_in_flight += req.ticks
        req.ahead = self._ticks_in_flight
        self._pending[req.msg["id"]] = req
        self._runs.append(req)
        req.fut.add_done_callback(functools.partial(self._finished, req))
        return req

    async def adopt(self, req: InFlight, reason: BaseException) -> np.ndarray:
        """A RUN the caller's thread sent (pnn.link.direct) and could not finish, because its port failed
        or it went unanswered for `give_up`: the loop takes it over, id and tries kept (a re-send that
        the board already ran is answered from its RESULT cache), drops the link for `reason`, and
        re-sends it after the reconnect's HELLO, waiting up to `patience` as every request does."""
        await self._slots.take()
        if self._fatal is not None or self._closing:
            self._slots.release()
            raise self._fatal or DeviceUnavailable(f"{self.id}: closed")
        req.fut = asyncio.get_running_loop().create_future()
        self._register(req)
        if self.connected:  # (else the link is being re-made already, and re-sends it when up)
            self._drop_link(reason)
        return self._result(req, await req.fut)

    def start(self, drive: np.ndarray, *, fail_fast: bool = False) -> InFlight | None:
        """run_chunk's fast path, with no task and no await (call it on the loop): the RUN is sent before
        this returns and `result(req)` reads its reply once `req.fut` is done. None where the request
        has to take the long way (link down, window full, a link that sends only by awaiting, more
        rows than one request carries): then call run() / run_chunk()."""
        if (self.cal is None or not self.connected or not self.transport.sync_send or not 0 < len(drive) <= self.chunk_limit
                or not self._slots.try_take()):  # fmt: skip
            return None
        req = self._new_run(self.cal.encode(drive).tobytes(), len(drive), fail_fast)
        self._send_now(req)
        return req

    def result(self, req: InFlight) -> np.ndarray:
        """The responses float32 [b, n_out] of a request `start` sent (its future done; raises its error)."""
        return self._result(req, req.fut.result())

    def _finished(self, req: InFlight, _fut: object) -> None:
        self._forget(req)
        self._ticks_in_flight -= req.ticks
        while self._runs and self._runs[0].fut.done():
            self._runs.popleft()
            self._slots.release()

    def _result(self, req: InFlight, reply: dict[str, Any]) -> np.ndarray:
        batch, n_out = req.msg["batch"], self.n_out
        if reply.get("t") != messages.RESULT or reply["batch"] != batch or reply["n_out"] != n_out:
            raise DeviceError(f"{self.id}: RUN answered by {reply.get('t')!r} of the wrong shape")
        p, stats = self.url.params, self._stats
        stats["samples"] += batch
        stats["requests"] += 1
        stats["overruns"] += reply["overruns"]
        period = reply["period_us"] * 1e-6 or 1.0 / p["rate"]
        stats["busy_s"] += period * batch * (p["settle"] + self.n_in)
        self._last_reply = time.monotonic()
        assert self.cal is not None
        return self.cal.decode(np.frombuffer(reply["resp"], _RESP).reshape(batch, n_out))

    async def run_chunk(self, drive: np.ndarray, *, fail_fast: bool = False) -> np.ndarray:
        """One RUN request: drive float32 [b, n_in] (b <= chunk_limit) -> responses float32 [b, n_out].

        Args:
            fail_fast: raise DeviceUnavailable as soon as the link is down (a pool re-queues the
                chunk elsewhere) instead of waiting up to `patience` seconds for it to come back.
        """
        req = await self._issue(drive, fail_fast)
        return self._result(req, await req.fut)

    async def run(self, drive: np.ndarray) -> np.ndarray:
        """Measure a batch float32 [B, n_in] -> float32 [B, n_out], split into requests kept `window` deep."""
        if drive.ndim != 2 or drive.shape[1] != self.n_in:
            raise ValueError(f"{self.id} expects drive of shape [B, {self.n_in}], got {list(drive.shape)}")
        if not len(drive):
            return np.zeros((0, self.n_out), np.float32)
        await self._wait_up(False)
        step = self.chunk_limit
        if len(drive) <= step:
            return await self.run_chunk(drive)
        reqs: list[InFlight] = []
        try:
            for i in range(0, len(drive), step):
                reqs.append(await self._issue(drive[i : i + step], False))
            return np.concatenate([self._result(r, await r.fut) for r in reqs])
        finally:  # one failed chunk ends the call: drop the rest, and read every error so none goes unseen
            for r in reqs:
                if not r.fut.done():
                    r.fut.cancel()
                elif not r.fut.cancelled():
                    r.fut.exception()


async def _within(tasks: list[asyncio.Future[Any]], deadline: float, what: str) -> None:
    """Wait for `tasks` until `deadline` (time.monotonic()); read what they raised, so nothing goes unretrieved,
    and leave behind with a warning any still running (a task that does not end when cancelled)."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    for task in done:
        if not task.cancelled():
            task.exception()
    if pending:
        log.warning("%s: %d did not end when cancelled; close() leaves them behind", what, len(pending))
        for task in pending:  # cancelled (again), and whatever they raise at last is read there and then
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())


def make_device(url: DeviceURL, *, check: bool = True, patience: float | None = None) -> AsyncDevice:
    """An unopened AsyncDevice with the transport the URL's scheme names."""
    transport: Transport
    if url.scheme == "sim":
        from .sim import SimTransport

        transport = SimTransport(url)
    elif url.scheme == "serial":
        from .serial import SerialTransport

        transport = SerialTransport(url)
    else:
        from .mqtt import MqttTransport

        transport = MqttTransport(url)
    return AsyncDevice(url, transport, check=check, patience=patience)
