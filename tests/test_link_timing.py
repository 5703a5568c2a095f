"""The link's timers: RFC 6298's estimator with its warm-up, and the loss meter that sets how far a
timer backs off, how many probes behind each request pay, and how many copies of a RUN."""

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
    assert meter.probes(0.040) == 0, "no loss seen: no probe"
    meter.observe("damaged")  # damaged frames tell of themselves: no probe needed for them
    assert meter.probes(0.040) == 0
    meter.observe("silent")
    meter.probe_cost(0.001)
    assert meter.probes(0.040) == 1, "1/16 of 40 ms > 1 ms; a PONG never seen lost: one probe"
    assert meter.probes_pay(0.040)  # (the synchronous path's question, pnn.link.direct)
    meter.probe_cost(0.100)
    meter.probe_cost(0.100)
    assert meter.probes(0.040) == 0, "a probe that costs the board more than it saves"


def test_a_second_probe_goes_out_while_pongs_are_lost_too() -> None:
    meter = LossMeter()
    for i in range(32):
        meter.observe("silent" if i % 2 else "ok")  # about half the requests lost with no sign
    meter.probe_cost(0.003)
    for i in range(64):
        meter.ponged.tried()
        if i % 2:
            meter.ponged.hit()  # half the PONGs lost too
    assert 0.4 < meter.silent < 0.5
    assert meter.probes(0.040, most=8) == 3, "s x 40 ms, s/2 x 40, s/4 x 40 > 3 ms > s/8 x 40"
    assert meter.probes(0.040, most=2) == 2


def test_copies_pay_only_where_few_get_through_and_never_to_a_silent_board() -> None:
    meter = LossMeter()
    assert meter.copies(0.010, 16) == 1, "nothing measured yet: one copy"
    for _ in range(256):  # every copy answered
        meter.answered.tried()
        meter.answered.hit()
    meter.probe_cost(0.001)
    assert meter.copies(0.010, 16) == 1, "a clean link: one copy"
    for i in range(1024):  # then 1 copy in 13 answered intact
        meter.answered.tried()
        if i % 13 == 0:
            meter.answered.hit()
    assert 0.06 < meter.answered.value < 0.1
    many = meter.copies(0.010, 16)
    assert 6 <= many <= 16, many
    assert meter.copies(0.010, 4) == 4, "never more than the link allows"
    assert meter.copies(0.010, 16) > meter.copies(0.001, 16), "copies that cost more of a round: fewer"
    for _ in range(1024):  # a board that stopped answering
        meter.answered.tried()
    assert meter.copies(0.010, 16) == 1


def test_a_failure_only_a_timer_tells_of_makes_a_second_copy_pay() -> None:
    meter = LossMeter()
    for i in range(256):  # 3 copies in 4 answered intact
        meter.answered.tried()
        if i % 4:
            meter.answered.hit()
    meter.probe_cost(0.010)  # a copy costs the board as much as a round
    assert meter.copies(0.010, 16) == 1, "a failed round known a round later: one copy"
    assert meter.copies(0.010, 16, wait_s=0.100) == 2, "known only when a 100 ms timer runs out: two"
    for _ in range(8):
        meter.observe("silent")  # losses with no sign: a probe behind the request pays ...
    assert meter.probes(0.100) >= 1
    assert meter.copies(0.010, 16, wait_s=0.100) == 1, "... and tells of a failure a round later"


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
