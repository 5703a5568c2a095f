"""How long to wait for a board: TCP's retransmission timer (RFC 6298) plus the board's own work,
and the record of one request in flight (InFlight) that the client times.

A request's deadline is the link's round trip, estimated as TCP does (smoothed RTT + 4 x its mean
deviation, kept within bounds, doubled on each expiry of that request), plus the time the board needs for the work
queued ahead of the reply: ticks x seconds per tick, where seconds per tick is the larger of what the
board's configuration states (1 / rate) and what its replies showed (a slow board, such as an emulated
RP2040, takes several times its nominal clock). Nothing here is a constant guess: every term comes
from the URL, the board's RESULTs, or measured round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class RetransmitTimer:
    """RFC 6298's estimator of the link's round trip (seconds), net of the board's execution time.

    Args:
        initial: the timeout before any round trip was measured (RFC 6298 says 1 s).
        lo, hi: bounds of the timeout; `hi` also caps the backoff.
    """

    initial: float
    lo: float
    hi: float
    srtt: float | None = None
    rttvar: float = 0.0

    def sample(self, rtt: float) -> None:
        """A round trip measured on a request sent once (Karn's rule: never on a re-sent one)."""
        rtt = max(0.0, rtt)
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    @property
    def rto(self) -> float:
        """The retransmission timeout for the link part of a round trip, seconds; each request doubles
        it on each of its own expiries (RFC 6298's backoff, kept per request so that one lossy HELLO
        does not slow every other request), within `hi`."""
        base = self.initial if self.srtt is None else self.srtt + max(4 * self.rttvar, 0.001)
        return min(self.hi, max(self.lo, base))


@dataclass
class BoardPace:
    """Seconds per tick of one board: its stated clock, widened by what its replies showed.

    Args:
        nominal: 1 / rate (the URL's, which the board accepted in HELLO's limits).
    """

    nominal: float
    observed_s: float = 0.0  # wall-clock seconds per tick (round trip less the link's), smoothed
    reported_s: float = 0.0  # the board's own measure (RESULT's period_us)

    @property
    def tick_s(self) -> float:
        return max(self.nominal, self.observed_s, self.reported_s)

    def reported(self, period_us: int) -> None:
        """The RESULT's own measure of its tick period (SPEC: `period_us`)."""
        self.reported_s = period_us * 1e-6

    def observed(self, seconds: float, ticks_ahead: int) -> None:
        """The board took `seconds` (a reply's round trip less the link's) for `ticks_ahead` ticks."""
        if ticks_ahead > 0:
            per_tick = max(0.0, seconds) / ticks_ahead
            self.observed_s = per_tick if not self.observed_s else 0.8 * self.observed_s + 0.2 * per_tick

    def seconds(self, ticks: int) -> float:
        """Board time for `ticks` ticks, with a margin for jitter in its clock."""
        return 1.25 * ticks * self.tick_s


class InFlight:
    """One request in flight: its message, the future its reply resolves, its timer and what sets it."""

    __slots__ = ("msg", "fut", "ticks", "ahead", "first", "sent", "tries", "expiries", "timer", "control", "fail_fast",
                 "retransmit")

    def __init__(self, msg: dict[str, Any], fut: asyncio.Future[dict[str, Any]], ticks: int = 0, *,
                 control: bool = False, fail_fast: bool = False, retransmit: bool = True) -> None:
        self.msg, self.fut, self.ticks = msg, fut, ticks
        self.ahead = ticks  # board ticks queued before its reply, its own included
        self.first = self.sent = 0.0
        self.tries = self.expiries = 0  # sends, and timer expiries (each doubles its next timeout)
        self.timer: asyncio.TimerHandle | None = None
        self.control, self.fail_fast, self.retransmit = control, fail_fast, retransmit


class Window:
    """The requests a board may have in flight: an asyncio.Semaphore that can also be taken without
    awaiting (the fast path of a call from another thread takes its slot in one loop callback)."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody queues for it."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one."""
        if self.try_take():
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # release() hands its slot over
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot, then cancelled before taking it: pass it on
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1
