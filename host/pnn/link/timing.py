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
import math
from collections import deque
from dataclasses import dataclass, field
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
    samples: int = 0
    warmup: int = 8  # samples during which one under half the estimate starts it afresh (see `sample`)

    def sample(self, rtt: float, *, fast_down: bool = False) -> None:
        """A round trip measured on a request sent once (Karn's rule: never on a re-sent one).

        fast_down: a sample under half the estimate starts it afresh (RFC 6298's first-sample rule),
            as every sample does in the first `warmup`: the first exchanges on a fresh link carry
            one-off costs (the board's first frame, the HELLO's long reply), and an estimate that took
            a dozen samples to shed them would make each early loss wait several round trips too long.
        """
        rtt = max(0.0, rtt)
        self.samples += 1
        if self.srtt is None or ((fast_down or self.samples <= self.warmup) and rtt < self.srtt / 2):
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


@dataclass
class Ratio:
    """The share of `trials` that succeeded, over about the last `span` trials (older halves forgotten
    in turn, so it follows the link), or `prior` before `span / 4` trials were seen."""

    span: int = 64
    prior: float = 1.0
    trials: float = 0.0
    hits: float = 0.0

    def tried(self, n: int = 1) -> None:
        self.trials += n
        if self.trials > self.span:
            self.trials, self.hits = self.trials / 2, self.hits / 2

    def hit(self) -> None:
        self.hits += 1

    @property
    def value(self) -> float:
        return min(1.0, self.hits / self.trials) if self.trials >= self.span / 4 else self.prior


@dataclass
class LossMeter:
    """How often a send is lost with no sign (only a timer's expiry, or a later reply overtaking it,
    tells), smoothed over about the last `span` sends; how often one copy of a RUN draws an intact
    RESULT, and a tail probe its PONG.

    It sets how many timer expiries in a row the link's losses alone explain (no backoff for
    those: re-sending into a noisy line that answers in time is no congestion), how many probes
    behind each request pay (see AsyncDevice._tail_probe), and how many copies of a RUN to send at
    once where the link loses messages one by one (`copies`).
    """

    span: int = 16
    silent: float = 0.0
    probe_s: float = 0.0  # what a probe costs: its PONG's lag behind the RESULT it trailed (the board's PING work)
    # RUN copies sent -> RESULTs back intact (late ones too), over enough copies for a few dozen RESULTs
    # where 1 in 13 gets through
    answered: Ratio = field(default_factory=lambda: Ratio(256))
    ponged: Ratio = field(default_factory=Ratio)  # tail probes sent -> PONGs back intact

    def observe(self, outcome: str) -> None:
        """One send's outcome: "ok" (answered intact), "damaged" (a damaged frame said so), "silent"."""
        self.silent += (float(outcome == "silent") - self.silent) / self.span

    def probe_cost(self, seconds: float) -> None:
        """A PONG arrived `seconds` after the RESULT of the RUN it trailed (per probe ahead of it)."""
        seconds = max(0.0, seconds)
        self.probe_s = seconds if not self.probe_s else 0.875 * self.probe_s + 0.125 * seconds

    def probes_pay(self, timeout: float) -> bool:
        """Whether one probe behind a request saves more waiting than it costs (see `probes`)."""
        return self.probes(timeout, 1) > 0

    def probes(self, timeout: float, most: int = 4) -> int:
        """How many probes behind a request pay: each one while the chance that the request and every
        probe before it end with no sign, x `timeout`, is more waiting saved than a probe costs."""
        n, unknown = 0, self.silent
        while n < most and unknown * timeout > self.probe_s:
            n += 1
            unknown *= 1.0 - self.ponged.value
        return n

    def copies(self, round_s: float, most: int, wait_s: float | None = None) -> int:
        """How many copies of a RUN to send at once (same id: the board runs it once and replays its
        RESULT for the others), on a link where each copy is lost or kept on its own (MQTT: a broker
        delivers each message whole or not at all), a round of them takes `round_s`, and a round that
        fails is known for one after `wait_s` (its timer; a round when a tail probe goes behind it).

        The one that minimises the expected time to an intact RESULT,
        (round_s + k x cost + P(no copy answered intact) x wait) / P(some copy answered intact),
        where a copy costs the board about what a probe costs it (`probe_s`): 1 on a clean link, more
        as fewer copies get through. 1 until a probe's cost was measured, and 1 where not one RESULT in
        the window came back (a board gone quiet gets no flood)."""
        q = self.answered.value
        if q >= 1.0 or self.answered.hits < 1.0 or self.probe_s <= 0.0 or round_s <= 0.0:
            return 1
        wait = round_s if wait_s is None or self.probes(wait_s) else wait_s
        best, pick = math.inf, 1
        for k in range(1, max(1, most) + 1):
            lost = (1.0 - q) ** k
            t = (round_s + k * self.probe_s + lost * wait) / (1.0 - lost)
            if t < best:
                best, pick = t, k
        return pick

    def free_expiries(self, chance: float = 0.01) -> int:
        """Timer expiries in a row that silent losses at this rate explain more often than `chance`: the
        first backoff comes after them. A rate past one half is no noisy line but a board that stopped
        answering: it backs off after log2(1 / chance) expiries, rounded down (6 at 1%)."""
        if self.silent <= 0.0:
            return 0
        return int(math.log(chance) / math.log(min(self.silent, 0.5)))


class InFlight:
    """One request in flight: its message, the future its reply resolves, its timer and what sets it."""

    __slots__ = ("msg", "fut", "ticks", "ahead", "first", "sent", "tries", "expiries", "timer", "control", "fail_fast",
                 "retransmit", "settled", "deadline", "batch")

    def __init__(self, msg: dict[str, Any], fut: asyncio.Future[dict[str, Any]], ticks: int = 0, *,
                 control: bool = False, fail_fast: bool = False, retransmit: bool = True) -> None:
        self.msg, self.fut, self.ticks = msg, fut, ticks
        self.ahead = ticks  # board ticks queued before its reply, its own included
        self.first = self.sent = self.deadline = 0.0  # (deadline: when its timer runs out)
        self.tries = self.expiries = 0  # copies sent, and timer expiries (each doubles its next timeout)
        self.batch = 0  # copies in its last send (1 unless the link pays for redundant copies, see LossMeter.copies)
        self.settled = 0  # its sends accounted for: by a frame they drew (damaged, an ERROR) or a timer expiry
        self.timer: asyncio.TimerHandle | None = None
        self.control, self.fail_fast, self.retransmit = control, fail_fast, retransmit


class Window:
    """The requests a board may have in flight: an asyncio.Semaphore that can also be taken without
    awaiting (the fast path of a call from another thread takes its slot in one loop callback)."""

    def __init__(self, size: int) -> None:
        self.size = self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def resize(self, size: int) -> None:
        """Make it `size` slots (a board's HELLO may allow fewer than the URL asks); slots taken stay taken, and
        a smaller window lets nobody in until enough of them are released."""
        self.free += size - self.size
        self.size = size
        while self.free > 0 and self._waiters:
            self.free -= 1
            self.release()

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
