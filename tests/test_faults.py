"""The fault injectors themselves (pnn.testing.faults), and Devices that come through heavy faults intact.

Rates here are far above the acceptance ones (test_faults_pat.py) so that every kind of fault strikes
many times in a few hundred frames: what arrives must still be exactly what a clean link delivers.
"""

from __future__ import annotations

import math
import os
import time

import pytest
import torch

from pnn.devices import connect
from pnn.testing.faults import FaultInjector, Faults, FaultyCable, Interrupter, _unframe, faulty_device
from pnn_protocol import frame

HEAVY = Faults(corrupt=1e-3, drop=0.1, duplicate=0.1, delay=0.05, reorder=0.05, delay_s=0.03, seed=11)


def within(count: int, n: int, p: float) -> bool:
    """count is within 5 standard deviations of Binomial(n, p)'s mean."""
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def test_rates_are_met_and_decisions_are_reproducible() -> None:
    faults = Faults(corrupt=1e-3, drop=0.1, duplicate=0.1, delay=0.1, reorder=0.1, seed=3)
    runs = []
    for _ in range(2):
        inj = FaultInjector(faults, stream=0)
        out = []
        for i in range(2000):
            inj.push(bytes([1 + i % 255]) * 100, now=float(i))
            out += inj.due(float(i))
        out += inj.due(1e9)
        runs.append((out, dict(inj.counts)))
    assert runs[0] == runs[1], "the same seed and stream make the same decisions"
    c = runs[0][1]
    assert c["frames"] == 2000
    assert within(c["dropped"], 2000, 0.1) and within(c["duplicated"], 1800, 0.1)
    assert within(c["delayed"], 1800, 0.1) and within(c["reordered"], 1800, 0.1)
    assert within(c["corrupted_bytes"], 100 * (2000 - c["dropped"] + c["duplicated"]), 1e-3)
    assert len(runs[0][0]) == 2000 - c["dropped"] + c["duplicated"]
    other = FaultInjector(faults, stream=1)
    for i in range(50):
        other.push(b"x" * 100, float(i))
    assert other.counts != FaultInjector(faults).counts


def test_a_corrupted_frame_never_passes_as_a_good_one() -> None:
    inj = FaultInjector(Faults(corrupt=3e-3, seed=5))
    payloads = [os.urandom(20 + i % 300) for i in range(1500)]
    for p in payloads:
        inj.push(frame(p), 0.0)
    arrived = inj.due(0.0)
    assert len(arrived) == len(payloads) and inj.counts["corrupted_frames"] > 100
    for p, data in zip(payloads, arrived, strict=True):
        good, bad = _unframe(data)
        if data == frame(p):
            assert (good, bad) == ([p], 0)
        else:
            assert good == [] and bad >= 1  # CRC32 (or COBS) catches it: lost, never wrong


def test_delayed_and_held_back_frames_arrive_late_and_in_a_new_order() -> None:
    late = FaultInjector(Faults(delay=1.0, delay_s=0.5))
    late.push(b"a", now=10.0)
    assert late.due(10.4) == [] and late.next_due() == 10.5 and late.due(10.5) == [b"a"]
    held = FaultInjector(Faults(reorder=1.0, hold_s=0.2))
    held.push(b"b", now=0.0)
    assert held.due(0.1) == [] and held.due(0.2) == [b"b"]  # nothing followed it: out after hold_s
    mixed = FaultInjector(Faults(reorder=0.3, seed=1))
    sent = [bytes([i]) for i in range(1, 200)]
    got = []
    for b in sent:
        mixed.push(b, 0.0)
        got += mixed.due(0.0)
    got += mixed.due(1.0)
    assert sorted(got) == sent and got != sent  # all there, some overtaken
    assert all(abs(got.index(b) - i) <= 8 for i, b in enumerate(sent))


def test_clear_loses_what_is_on_its_way() -> None:
    inj = FaultInjector(Faults(delay=1.0, delay_s=1.0))
    inj.push(b"x", 0.0)
    inj.clear()
    assert inj.next_due() is None and inj.due(5.0) == []


def test_fault_specs_parse_and_bad_ones_are_named() -> None:
    assert Faults.parse("corrupt=1e-3, drop=0.01,duplicate=0.01,seed=4") == Faults(
        corrupt=1e-3, drop=0.01, duplicate=0.01, seed=4
    )
    with pytest.raises(ValueError, match="unknown fault 'bogus'.*known: corrupt"):
        Faults.parse("bogus=1")
    with pytest.raises(ValueError, match="not a number"):
        Faults.parse("drop=lots")
    with pytest.raises(ValueError, match=r"drop=1.5 is outside \[0, 1\]"):
        Faults(drop=1.5)
    with pytest.raises(ValueError, match="delay_s must be >= 0"):
        Faults(delay_s=-1)


def test_a_device_through_heavy_message_faults_and_disconnects_measures_exactly(tmp_path) -> None:
    url = "sim://electronic?n_in=16&n_out=8&noise=off&seed=2&chunk=4&window=3&timeout=0.1&retries=40"
    drive = torch.rand(160, 16, generator=torch.Generator().manual_seed(0))
    with connect(url) as clean:
        expected = clean(drive)
    faults = Faults(**{**HEAVY.__dict__, "disconnect": 0.01, "down_s": 0.05})
    with faulty_device(url, faults) as board:
        got = board(drive)
        stats, counts = board.stats(), board.aio.transport.counts()
    assert torch.equal(got, expected)
    assert stats["samples"] == 160 and stats["retries"] > 0 and stats["reconnects"] >= 1
    assert all(sum(c[k] for c in counts.values()) for k in ("dropped", "duplicated", "corrupted_frames")), (
        counts
    )
    assert (
        stats["bad_frames"] >= counts["to_host"]["corrupted_frames"]
    )  # each damaged reply counted, none used


def test_firmware_through_a_heavily_faulty_cable_measures_exactly(firmware_serial, tmp_path) -> None:
    clean_board, faulty_board = firmware_serial(seed=9, cable=True), firmware_serial(seed=9)
    link = "n_in=16&n_out=8&chunk=4&window=1&timeout=0.15&retries=40&heartbeat=0"
    drive = torch.rand(96, 16, generator=torch.Generator().manual_seed(1))
    with connect(f"serial://{clean_board.host_path}?{link}") as board:
        expected = board(drive)
    with FaultyCable(faulty_board.fd, HEAVY, tmp_path) as cable:
        with connect(f"serial://{cable.path}?{link}") as board:
            got = board(drive)
            stats = board.stats()
        counts = cable.counts()
    # noisy board, one request at a time: equal means every RUN ran exactly once, in order
    assert torch.equal(got, expected)
    both = (counts["to_board"], counts["to_host"])
    assert sum(c["dropped"] for c in both) and sum(c["duplicated"] for c in both), counts
    assert stats["errors"] > 0 and stats["retries"] > 0  # the firmware answered damaged frames with ERRORs


def test_an_unplugged_cable_comes_back_at_the_same_path(firmware_serial, tmp_path) -> None:
    sim = firmware_serial(seed=3)
    with FaultyCable(sim.fd, Faults(), tmp_path) as cable:
        with connect(f"serial://{cable.path}?n_in=16&n_out=8&timeout=0.3&heartbeat=0.2") as board:
            before = board(torch.rand(8, 16))
            cable.unplug(0.3)
            after = board(torch.rand(8, 16))
            stats = board.stats()
        assert cable.counts()["unplugs"] == 1
    assert before.shape == after.shape == (8, 8)
    assert stats["reconnects"] >= 1 and stats["samples"] == 16


def test_interrupter_acts_during_the_chosen_call() -> None:
    events: list[str] = []

    class Slow:
        n_in, n_out = 4, 2

        def __call__(self, drive: torch.Tensor) -> torch.Tensor:
            events.append("start")
            time.sleep(0.1)
            events.append("end")
            return torch.zeros(len(drive), 2)

    wrapped = Interrupter(Slow(), {2: lambda: events.append("action")})
    for _ in range(3):
        assert wrapped(torch.rand(5, 4)).shape == (5, 2)
    wrapped.join()
    assert events == ["start", "end", "start", "action", "end", "start", "end"]
    assert wrapped.calls == 3 and wrapped.rows == 15
