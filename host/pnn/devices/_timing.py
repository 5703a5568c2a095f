"""How long to wait for a board: TCP's retransmission timer (RFC 6298) plus the board's own work.

A request's deadline is the link's round trip, estimated as TCP does (smoothed RTT + 4 x its mean
deviation, doubled on each expiry, kept within bounds), plus the time the board needs for the work
queued ahead of the reply: ticks x seconds per tick, where seconds per tick is the larger of what the
board's configuration states (1 / rate) and what its replies showed (a slow board, such as an emulated
RP2040, takes several times its nominal clock). Nothing here is a constant guess: every term comes
from the URL, the board's RESULTs, or measured round trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    backoff: int = field(default=0)

    def sample(self, rtt: float) -> None:
        """A round trip measured on a request sent once (Karn's rule: never on a re-sent one)."""
        rtt = max(0.0, rtt)
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.backoff = 0  # a fresh measurement ends the backoff (RFC 6298 section 5.7)

    def expired(self) -> None:
        """A timer expired: double the next timeout (bounded by `hi`)."""
        self.backoff = min(self.backoff + 1, 16)

    @property
    def rto(self) -> float:
        """The current retransmission timeout for the link part of a round trip, seconds."""
        base = self.initial if self.srtt is None else self.srtt + max(4 * self.rttvar, 0.001)
        return min(self.hi, max(self.lo, base) * 2**self.backoff)


@dataclass
class BoardPace:
    """Seconds per tick of one board: its stated clock, widened by what its replies showed.

    Args:
        nominal: 1 / rate (the URL's, which the board accepted in HELLO's limits).
    """

    nominal: float
    observed_s: float = 0.0  # wall-clock seconds per tick, smoothed (an upper bound: it includes the link)
    reported_s: float = 0.0  # the board's own measure (RESULT's period_us)

    @property
    def tick_s(self) -> float:
        return max(self.nominal, self.observed_s, self.reported_s)

    def reported(self, period_us: int) -> None:
        """The RESULT's own measure of its tick period (SPEC: `period_us`)."""
        self.reported_s = period_us * 1e-6

    def observed(self, seconds: float, ticks_ahead: int) -> None:
        """A reply took `seconds` with `ticks_ahead` ticks queued before it, its own included."""
        if ticks_ahead > 0:
            per_tick = seconds / ticks_ahead
            self.observed_s = per_tick if not self.observed_s else 0.8 * self.observed_s + 0.2 * per_tick

    def seconds(self, ticks: int) -> float:
        """Board time for `ticks` ticks, with a margin for jitter in its clock."""
        return 1.25 * ticks * self.tick_s
