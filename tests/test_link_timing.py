"""The link's timers: RFC 6298's estimator with its warm-up, and the loss meter that sets how far a
timer backs off and whether a probe behind each request pays."""

from __future__ import annotations

from dataclasses import replace

from pnn.link.timing import LossMeter, RetransmitTimer


def test_a_slow_first_exchange_is_shed_at_once_in_the_warm_up_but_not_after() -> None:
    timer = RetransmitTimer(initial=1.0, lo=0.001, hi=8.0)
    assert timer.rto == 1.0, "before any sample: the initial timeout"
    timer.sample(0.050)  # the board's first frame carries one-off costs
    assert abs(timer.rto - 0.150) < 1e-9, "RFC 6298: srtt + 4 x srtt / 2"
    timer.sample(0.004)  # a sample under half the estimate, in the warm-up: start afresh
    assert abs(timer.rto - 0.012) < 1e-9
    for _ in range(timer.warmup):
        timer.sample(0.004)
    timer.sample(0.001)  # after the warm-up: smoothed, as RFC 6298 says
    assert timer.srtt is not None and 0.003 < timer.srtt < 0.004
    timer.sample(0.0005, fast_down=True)  # a handshake's round trip may still start it afresh
    assert timer.srtt == 0.0005


def test_backoff_waits_for_the_expiries_the_silent_loss_rate_explains() -> None:
    meter = LossMeter()
    assert meter.free_expiries() == 0, "a link never seen losing: RFC 6298's backoff from the first expiry"
    for _ in range(64):
        meter.observe("silent" if _ % 3 == 0 else "ok")  # a third of the sends lost with no sign
    assert 0.3 < meter.silent < 0.4
    assert meter.free_expiries() == 4, "0.35^4 > 1% > 0.35^5"
    for _ in range(200):
        meter.observe("silent")  # a board that stopped answering: capped, it backs off after 6
    assert meter.free_expiries() == 6


def test_probes_pay_only_while_silent_losses_cost_more_than_they_do() -> None:
    meter = LossMeter()
    assert not meter.probes_pay(0.040), "no loss seen: no probe"
    meter.observe("damaged")  # damaged frames tell of themselves: no probe needed for them
    assert not meter.probes_pay(0.040)
    meter.observe("silent")
    meter.probe_cost(0.001)
    assert meter.probes_pay(0.040), "1/16 of 40 ms > 1 ms"
    meter.probe_cost(0.100)
    meter.probe_cost(0.100)
    assert not meter.probes_pay(0.040), "a probe that costs the board more than it saves"


def test_results_kept_follows_spec_section_4() -> None:
    """min(cache, cache_bytes // s - 1) RESULTs of s = payload + 4 bytes, never under one; None with no cache."""
    from pnn.link.codes import _CAPS, Capabilities
    from pnn_protocol import messages

    base = Capabilities.from_hello(messages.hello(1, "d", "fw", "b", {k: 1 for k in _CAPS} | {"cache": 8}))
    RUN_OVERHEAD = messages.RUN_OVERHEAD  # noqa: N806
    s = 2 * 16 * 16 + RUN_OVERHEAD + 4
    assert base.results_kept(16, 16) == 8  # no pool stated: the entry count alone
    assert replace(base, cache_bytes=4 * s).results_kept(16, 16) == 3
    assert replace(base, cache_bytes=100 * s).results_kept(16, 16) == 8
    assert replace(base, cache_bytes=s).results_kept(16, 16) == 1  # the latest RESULT is always kept
    assert replace(base, cache=0).results_kept(16, 16) is None
    assert replace(base, cache_bytes=4 * s).window_for(3, 16, 16) == (3, "")
    window, why = replace(base, cache_bytes=4 * s).window_for(4, 16, 16)
    assert window == 3 and "window=4 lowered to 3" in why and "window <= 3" in why
