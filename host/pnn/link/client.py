"""The asyncio Device client: one core over every transport (serial, MQTT, in-process sim).

What it guarantees:
- HELLO on every (re)connect; the board's capabilities are checked against the URL, and a different
  board answering at the same address is refused (its twin would be wrong).
- Request ids from a 32-bit counter that starts at a random value, so a restarted host never
  collides with the ids a board still holds in its duplicate cache.
- `window` requests in flight; each with a timeout sized by the hardware work queued ahead of it.
- Retries re-send the same id: the firmware's duplicate cache answers instead of running again, and
  the first reply per id is the only one used (later copies are counted, never returned).
- A link that drops (unplug, broker restart, unanswered heartbeat) is reopened with backoff;
  requests in flight are re-sent after the new HELLO, or (pool mode) handed back at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from typing import Any

import numpy as np

from pnn_protocol import errors, messages

from .codes import Calibration, Capabilities
from .errors import CapabilityError, DeviceError, DeviceUnavailable, LinkDown, NoSuchDevice
from .transport import Transport
from .url import DeviceURL

log = logging.getLogger(__name__)  # pnn.link.client: drops, reconnects, resends

# ERROR codes that say the request never reached the device intact: re-sending can succeed.
_TRANSIENT = (errors.BAD_CRC, errors.BAD_FRAME, errors.INTERNAL)
_BACKOFF = (0.05, 2.0)  # first and longest pause between reconnect attempts, seconds


class AsyncDevice:
    """One board, asyncio API. `pnn.connect(url)` wraps it in the synchronous `Device`.

    Args:
        url: the parsed URL (n_in, n_out, rate, settle, window, timeout, retries, heartbeat, ...).
        transport: the link to the board.
    """

    def __init__(self, url: DeviceURL, transport: Transport, *, check: bool = True) -> None:
        self.url, self.id, self.transport, self._check = url, url.id, transport, check
        self.n_in, self.n_out, self.window = url["n_in"], url["n_out"], url["window"]
        self.hello: dict[str, Any] = {}
        self.caps: Capabilities | None = None
        self.cal: Calibration | None = None
        self._ids = itertools.count(random.randrange(1, messages.MAX_ID // 2))
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._slots = asyncio.Semaphore(self.window)
        self._supervisor: asyncio.Task[None] | None = None
        self._broken = asyncio.Event()
        self._closing = False
        self._fatal: BaseException | None = None
        self._last_error: BaseException | None = None
        self._last_rx = 0.0
        self._ticks_in_flight = 0
        self._tick_s = 1.0 / url["rate"]  # estimated seconds per tick, link and host included
        self._stats = dict(samples=0, requests=0, retries=0, duplicates=0, stale=0, errors=0, reconnects=0,
                           busy_s=0.0, overruns=0)
        self._first_send = self._last_reply = 0.0

    def _next_id(self) -> int:
        return next(self._ids) & messages.MAX_ID  # 32-bit, wrapping

    # -- state ----------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def chunk_limit(self) -> int:
        """Most examples per request: the board's limit, or the URL's `chunk` if smaller."""
        limit = self.caps.chunk_limit(self.n_in, self.n_out) if self.caps else 1
        return min(limit, self.url["chunk"]) if self.url["chunk"] else limit

    async def wait_connected(self, timeout: float | None) -> bool:
        """Wait until the link is up (True) or `timeout` passes or the device fails for good (False)."""
        if self._fatal is not None or self._closing:
            return False
        if timeout is not None and timeout <= 0:
            return self.connected
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for the run plots: samples, samples_per_s, busy_s (board time), retries, ..."""
        span = self._last_reply - self._first_send
        s: dict[str, Any] = dict(self._stats)
        s.update(samples_per_s=s["samples"] / span if span > 0 else 0.0, connected=self.connected,
                 bad_frames=self.transport.bad_frames, board=self.hello.get("device", ""))
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

    async def close(self) -> None:
        """Stop the link; requests still waiting fail with DeviceUnavailable."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self._connected.clear()
        self._lost.set()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DeviceUnavailable(f"{self.id}: closed"))
                fut.exception()  # mark retrieved: nobody may be waiting on it
        await self.transport.close()

    async def _supervise(self) -> None:
        """Connect, serve until the link drops, back off, reconnect; until closed or a fatal error."""
        backoff, first = _BACKOFF[0], True
        while not self._closing:
            self._broken = asyncio.Event()
            tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._broken.wait())]
            try:
                await self.transport.open()
                tasks.append(asyncio.ensure_future(self._read()))
                hello = asyncio.ensure_future(self._handshake())
                tasks.append(hello)
                # a reader that fails (board offline, port gone) ends the attempt at once
                await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
                tasks.remove(hello)
                if not hello.done():
                    hello.cancel()
                    tasks[1].result()
                hello.result()
                self._stats["reconnects"] += 0 if first else 1
                if first:
                    log.info("%s: connected to board %r", self.id, self.hello.get("device"))
                else:
                    log.warning("%s: reconnected to board %r", self.id, self.hello.get("device"))
                first, backoff = False, _BACKOFF[0]
                self._lost = asyncio.Event()
                self._connected.set()
                if self.url["heartbeat"] > 0:
                    tasks.append(asyncio.ensure_future(self._heartbeat()))
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not tasks[0]:
                        task.result()
                raise LinkDown(f"{self._last_error}")
            except (CapabilityError, DeviceError) as e:
                self._fatal = e
            except NoSuchDevice as e:
                if first:  # a mistyped port: say so now rather than after `reconnect` seconds
                    self._fatal = ConnectionError(str(e))
                    self._fatal.__cause__ = e  # (its type, for callers that match by type)
                self._last_error = e
            except (LinkDown, OSError, TimeoutError) as e:
                self._last_error = e
                if self._connected.is_set():
                    log.warning("%s: link down (%s); reconnecting", self.id, e)
            except Exception as e:  # noqa: BLE001 - anything else a link throws: keep the reason, retry
                self._last_error = e
                if self._connected.is_set():
                    log.warning("%s: link down (%r); reconnecting", self.id, e)
            finally:
                self._connected.clear()
                self._lost.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.transport.close()
            if self._fatal is not None:
                log.info("%s: giving up on the link: %s", self.id, self._fatal)
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(self._fatal)
                        fut.exception()
                return
            if not self._closing:
                log.info("%s: no link (%s); trying again", self.id, self._last_error)
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(2 * backoff, _BACKOFF[1])

    async def _read(self) -> None:
        """Route each reply to the request waiting for its id; count the rest."""
        while True:
            msg = await self.transport.recv()
            self._last_rx = time.monotonic()
            rid = msg.get("id")
            fut = self._pending.get(rid) if rid is not None else None
            if fut is None:
                # an ERROR about a frame (id nil) or a late reply to a finished request
                self._stats["errors" if msg.get("t") == messages.ERROR else "stale"] += 1
            elif fut.done():
                self._stats["duplicates"] += 1
            else:
                fut.set_result(msg)

    async def _exchange(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One control request and its reply, no retries (HELLO, PING)."""
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg["id"]] = fut
        try:
            await self.transport.send(msg)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(msg["id"], None)

    async def _handshake(self) -> None:
        reply = await self._exchange(messages.hello_request(self._next_id()), self.url["timeout"] + 1.0)
        if reply.get("t") != messages.HELLO:
            raise LinkDown(f"HELLO answered with {reply.get('t')!r}: {reply.get('msg', '')}")
        caps = Capabilities.from_hello(reply)
        if self._check:
            caps.check(self.url)
        if self.caps is not None and caps.device != self.caps.device:
            raise DeviceError(f"{self.id}: board {caps.device!r} answered where {self.caps.device!r} was; "
                              "reconnect to it by its own URL (its twin is different)")
        self.hello, self.caps, self.cal = reply, caps, Calibration.for_device(caps, self.url)

    async def _heartbeat(self) -> None:
        """PING an idle link; no answer (within the work queued ahead) means the link is dead."""
        interval = self.url["heartbeat"]
        while True:
            await asyncio.sleep(interval / 2)
            if time.monotonic() - self._last_rx < interval:
                continue
            try:
                await self._exchange(messages.ping(self._next_id()), interval + self._expected(0))
            except TimeoutError:
                raise LinkDown(f"{self.id}: no answer to heartbeat") from None

    async def ping(self) -> float:
        """Round-trip time of one PING, seconds (raises TimeoutError / DeviceUnavailable)."""
        if not self.connected:
            raise DeviceUnavailable(f"{self.id}: not connected")
        start = time.monotonic()
        await self._exchange(messages.ping(self._next_id()), self._expected(0))
        return time.monotonic() - start

    def _expected(self, ticks: int) -> float:
        """Seconds to allow for `ticks` more plus the work already in flight."""
        return self.url["timeout"] + 1.5 * (self._ticks_in_flight + ticks) * self._tick_s

    # -- measuring ------------------------------------------------------------------------------
    async def run_chunk(self, drive: np.ndarray, *, fail_fast: bool = False) -> np.ndarray:
        """One RUN request: drive float32 [b, n_in] (b <= chunk_limit) -> responses float32 [b, n_out].

        Args:
            fail_fast: raise DeviceUnavailable as soon as the link is down (a pool re-queues the
                chunk elsewhere) instead of waiting up to `reconnect` seconds for it to come back.
        """
        if self._fatal is not None:
            raise self._fatal
        if self.cal is None:
            raise DeviceUnavailable(f"{self.id}: not connected yet (call open())")
        batch = len(drive)
        codes = self.cal.encode(drive)
        p = self.url.params
        ticks = batch * (p["settle"] + self.n_in) * p["oversample"]
        async with self._slots:
            rid = self._next_id()
            msg = messages.run(rid, codes.tobytes(), batch, self.n_in, p["rate"], p["oversample"], p["settle"], self.n_out,
                               self.cal.drive_width)
            self._pending[rid] = asyncio.get_running_loop().create_future()
            self._ticks_in_flight += ticks
            try:
                reply = await self._deliver(msg, ticks, fail_fast)
            finally:
                self._pending.pop(rid, None)
                self._ticks_in_flight -= ticks
        if reply.get("t") != messages.RESULT or reply["batch"] != batch or reply["n_out"] != self.n_out:
            raise DeviceError(f"{self.id}: RUN answered by {reply.get('t')!r} of the wrong shape")
        response = np.frombuffer(reply["resp"], "<u2").reshape(batch, self.n_out)
        self._stats["samples"] += batch
        self._stats["requests"] += 1
        self._stats["overruns"] += reply["overruns"]
        period = reply["period_us"] * 1e-6 or 1.0 / p["rate"]
        self._stats["busy_s"] += period * batch * (p["settle"] + self.n_in)
        self._last_reply = time.monotonic()
        return self.cal.decode(response)

    async def _deliver(self, msg: dict[str, Any], ticks: int, fail_fast: bool) -> dict[str, Any]:
        """Send until one reply arrives; re-sends keep the id. Returns the RESULT (or raises)."""
        rid, tries = msg["id"], 0
        link_deadline = time.monotonic() + self.url["reconnect"]
        while True:
            if not self.connected:
                if fail_fast or not await self.wait_connected(link_deadline - time.monotonic()):
                    raise self._fatal or DeviceUnavailable(f"{self.id}: link down ({self._last_error})")
            lost, fut = self._lost, self._pending[rid]
            sent = time.monotonic()
            self._first_send = self._first_send or sent
            try:
                await self.transport.send(msg)
            except LinkDown as e:
                self._drop_link(e)
                continue
            timeout = self._expected(0)
            lost_wait = asyncio.ensure_future(lost.wait())
            await asyncio.wait({fut, lost_wait}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            lost_wait.cancel()
            if fut.done():
                reply = fut.result()
                if reply.get("t") != messages.ERROR:
                    self._learn_tick(time.monotonic() - sent, ticks)
                    return reply
                self._stats["errors"] += 1
                if reply["code"] not in _TRANSIENT:
                    raise DeviceError(f"{self.id}: {errors.name(reply['code'])}: {reply['msg']}", reply["code"])
                log.info("%s: request %d answered %s; resending", self.id, rid, errors.name(reply["code"]))
                self._pending[rid] = asyncio.get_running_loop().create_future()
            elif lost.is_set():
                self._stats["retries"] += 1
                if fail_fast:
                    raise DeviceUnavailable(f"{self.id}: link lost with a request in flight")
                log.info("%s: link lost with request %d in flight; resending once it is back", self.id, rid)
                link_deadline = time.monotonic() + self.url["reconnect"]
                continue  # not counted against `retries`: the link, not the request, failed
            tries += 1
            self._stats["retries"] += 1
            if tries > self.url["retries"]:
                raise DeviceUnavailable(f"{self.id}: no reply to request {rid} after {tries} tries")
            log.info("%s: no reply to request %d within %.3g s; resending (try %d)", self.id, rid, timeout, tries + 1)

    def _learn_tick(self, seconds: float, ticks: int) -> None:
        # An upper bound on seconds per tick (the reply waited for everything in flight before it);
        # it only ever widens timeouts for boards slower than their nominal clock.
        observed = seconds / max(1, self._ticks_in_flight)
        self._tick_s = max(1.0 / self.url["rate"], 0.8 * self._tick_s + 0.2 * observed)

    def _drop_link(self, reason: BaseException) -> None:
        """A send failed: tell the supervisor to reconnect."""
        self._last_error = reason
        self._connected.clear()
        self._lost.set()
        self._broken.set()

    async def run(self, drive: np.ndarray) -> np.ndarray:
        """Measure a batch float32 [B, n_in] -> float32 [B, n_out], split into requests kept `window` deep."""
        if drive.ndim != 2 or drive.shape[1] != self.n_in:
            raise ValueError(f"{self.id} expects drive of shape [B, {self.n_in}], got {list(drive.shape)}")
        if not len(drive):
            return np.zeros((0, self.n_out), np.float32)
        if not self.connected and not await self.wait_connected(self.url["reconnect"]):
            raise self._fatal or DeviceUnavailable(f"{self.id}: not connected ({self._last_error})")
        step = self.chunk_limit
        try:
            async with asyncio.TaskGroup() as group:  # one failed chunk cancels the rest
                parts = [group.create_task(self.run_chunk(drive[i : i + step])) for i in range(0, len(drive), step)]
        except BaseExceptionGroup as e:
            raise e.exceptions[0] from None
        return np.concatenate([p.result() for p in parts])


def make_device(url: DeviceURL, *, check: bool = True) -> AsyncDevice:
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
    return AsyncDevice(url, transport, check=check)
