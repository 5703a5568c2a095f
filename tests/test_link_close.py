"""Device.close() cannot hang: it waits a bounded time (the link's `max_rto`) for the link's tasks, re-sends
and transport, and a request waiting through an outage ends with it instead of waiting out `patience`.

The board is the in-process simulator behind its real Device core; only the transport's close (or send)
is made to ignore its cancellation, as a stuck socket or broker goodbye would.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np
import pytest

from pnn.devices import Device
from pnn.link import loop as _loop
from pnn.link.client import make_device
from pnn.link.errors import DeviceUnavailable
from pnn.link.sim import SimTransport
from pnn.link.url import parse_url
from pnn_protocol import frame

URL = "sim://electronic?n_in=4&n_out=2&max_rto=0.5&heartbeat=0"


class StuckTransport(SimTransport):
    """The simulator's link whose close() (and, once `stick_sends`, send()) ignores cancellation until
    `release` is set: what close() must not wait on for ever."""

    def __init__(self, url) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.stick_sends = False
        self.held = self.stuck = 0  # calls held, cancellations ignored

    async def _hold(self) -> None:
        self.held += 1
        while not self.release.is_set():
            try:
                await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                self.stuck += 1  # swallowed: it goes on waiting

    async def send(self, msg) -> None:
        if self.stick_sends:
            await self._hold()
        await super().send(msg)

    async def close(self) -> None:
        await self._hold()
        await super().close()


def _device(transport=StuckTransport, patience: float | None = None) -> Device:
    aio = make_device(parse_url(URL), patience=patience)
    aio.transport = transport(aio.url)
    _loop.run(aio.open())
    return Device(aio)


def _closes_in_time(dev: Device) -> float:
    """Close `dev` in a thread; fail (instead of hanging the suite) if it is still closing after a bound
    far beyond what close() may take (a few x max_rto, plus room for a loaded machine)."""
    done = threading.Event()
    start = time.monotonic()
    thread = threading.Thread(target=lambda: (dev.close(), done.set()), daemon=True)
    thread.start()
    assert done.wait(60 + 4 * dev.aio.url["max_rto"]), "Device.close() hung"
    return time.monotonic() - start


def test_close_returns_though_the_transport_ignores_cancellation(caplog) -> None:
    dev = _device()
    out = dev(np.full((3, 4), 0.5, np.float32))
    assert out.shape == (3, 2)
    transport = dev.aio.transport
    with caplog.at_level(logging.WARNING, logger="pnn"):
        _closes_in_time(dev)
    try:
        assert transport.held >= 1 and transport.stuck >= 1, "the test's transport should have held close()"
        assert any("did not end when cancelled" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        transport.release.set()  # let what close() left behind end now, before the loop is reused


def test_close_returns_though_a_resend_is_stuck_in_its_send(caplog) -> None:
    """A request in flight whose re-send hangs in send(): close() fails the request and returns."""
    dev = _device()
    transport = dev.aio.transport
    transport.stick_sends = True
    future = dev.submit(np.full((1, 4), 0.25, np.float32))
    with caplog.at_level(logging.WARNING, logger="pnn"):
        _closes_in_time(dev)
    try:
        with pytest.raises(DeviceUnavailable, match="closed"):
            future.result(timeout=30)
    finally:
        transport.release.set()


def test_a_request_waiting_through_an_outage_ends_with_close() -> None:
    """The link is down with 600 s of patience left: close() must end the waiting call at once, with
    DeviceUnavailable, not leave it waiting out its patience."""
    dev = _device(SimTransport, patience=600)
    dev(np.full((1, 4), 0.5, np.float32))
    _loop.call_soon(dev.aio.transport.unplug, 3600)  # (on the loop: its queues are not thread-safe)
    deadline = time.monotonic() + 30
    while dev.aio.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not dev.aio.connected
    future = dev.submit(np.full((2, 4), 0.5, np.float32))
    time.sleep(0.2)  # it is waiting for the link now
    assert not future.done()
    _closes_in_time(dev)
    with pytest.raises(DeviceUnavailable, match="closed"):
        future.result(timeout=30)


class _Quiet(SimTransport):
    """A link that stays open and silent: what FaultyTransport wraps here (only its own tasks matter)."""

    async def open(self) -> None:
        self._hold = asyncio.get_running_loop().create_future()

    async def send(self, msg) -> None:
        pass

    async def recv(self) -> dict:
        await self._hold
        return {}

    async def close(self) -> None:
        pass


def test_a_cancellation_that_meets_a_wake_up_is_never_lost() -> None:
    """Python 3.11's asyncio.wait_for drops a cancellation that lands as the awaited thing completes, so a
    loop around one (the fault injector's pump, the heartbeat's probe) could outlive its cancel and hang
    close() for good. Cancel the pump at each step of a wake-up in turn: every close must end."""
    from pnn.testing.faults import Faults, FaultyTransport

    async def one(turns: int) -> bool:
        link = FaultyTransport(_Quiet(parse_url(URL)), Faults(delay=1.0, delay_s=600))
        await link.open()
        link._to_host.inj.push(frame(b"late"), time.monotonic())  # due in 600 s: the pump's wait has a timeout
        link._to_host.wake.set()
        for _ in range(8):
            await asyncio.sleep(0)  # the pump waits for it now, 600 s at most
        link._to_host.wake.set()  # a wake-up: the cancellation below meets it at step `turns`
        for _ in range(turns):
            await asyncio.sleep(0)
        tasks = list(link._tasks)
        for task in tasks:  # what close() does first; then it waits for them
            task.cancel()
        _, survived = await asyncio.wait(tasks, timeout=5.0)
        for task in survived:  # (cancelled again: so that this test itself leaves nothing running)
            task.cancel()
        await asyncio.wait(tasks, timeout=5.0)
        await link.close()
        return not survived

    async def every() -> list[int]:
        return [turns for turns in range(6) if not await one(turns)]

    assert asyncio.run(every()) == [], "close() hung: a cancellation was lost at these steps"
