"""A Device call on the caller's own thread (pnn.link.direct) against the real firmware: it is used for a
one-request call, measures what the loop's path measures, keeps the link's guarantees through a
corrupting cable, an unplugged port and a frozen board (never running a RUN twice), and gives way
to the loop when something else is in flight."""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time

import pytest
import torch
from _fixtures import CountingFirmware, board_file
from _fixtures import wait_for as _wait_for

from pnn.devices import connect
from pnn.testing.faults import Faults, FaultyCable


@pytest.fixture
def counting(tmp_path):
    """Factory: the counting firmware (tests/fw_counting.py), optionally with a board file; closed after."""
    started: list[CountingFirmware] = []

    def start(board: str | None = None) -> CountingFirmware:
        started.append(CountingFirmware(tmp_path, board))
        return started[-1]

    yield start
    for fw in started:
        fw.close()


def test_one_request_calls_run_on_the_callers_thread_and_measure_what_the_loop_measures(firmware_serial) -> None:
    # two boards with the same seed (noisy ADCs): equal answers mean the same RUNs ran once each, in order
    direct, looped = firmware_serial(seed=7, cable=True), firmware_serial(seed=7, cable=True)
    link = "n_in=16&n_out=8&window=1&heartbeat=0"
    drive = torch.rand(60, 16, generator=torch.Generator().manual_seed(2))
    with connect(f"serial://{direct.host_path}?{link}") as board:
        board(drive[:2])  # the first call borrows the port from the loop
        loop_writes = []
        write = board.aio.transport._write
        board.aio.transport._write = lambda data: (loop_writes.append(data), write(data))  # type: ignore[method-assign]
        got = torch.cat([board(drive[i : i + 2]) for i in range(2, 60, 2)])
        calls, stats = board.direct.calls, board.stats()
    with connect(f"serial://{looped.host_path}?{link}") as board:
        board.submit(drive[:2]).result()  # submit() always goes through the loop
        expected = torch.cat([board.submit(drive[i : i + 2]).result()[0] for i in range(2, 60, 2)])
        assert board.direct.calls == 0
    assert torch.equal(got, expected)
    assert calls == 30 and not loop_writes, "every call ran on this thread; the loop wrote nothing"
    assert stats["requests"] == 30 and stats["samples"] == 60 and stats["rto_s"] < 1.0  # round trips measured


@pytest.mark.parametrize("faults", [
    Faults(corrupt=1e-2, duplicate=0.02, seed=5),  # damaged frames both ways: fast re-sends
    Faults(corrupt=3e-3, drop=0.02, duplicate=0.02, seed=8),  # and lost ones: timers (or the loop's probes)
], ids=["corrupt", "corrupt-drop"])  # fmt: skip
def test_through_a_corrupting_cable_the_direct_path_never_runs_a_run_twice(counting, tmp_path, faults) -> None:
    fw = counting()
    with FaultyCable(fw.fd, faults, tmp_path) as cable:
        with connect(f"serial://{cable.path}?n_in=32&n_out=16&window=1&heartbeat=0") as board:
            drive = torch.rand(240, 32, generator=torch.Generator().manual_seed(0))
            for i in range(0, len(drive), 2):
                assert board(drive[i : i + 2]).shape == (2, 16)
            stats, calls, resends = board.stats(), board.direct.calls, board.direct.resends
    assert stats["fast_resends"] + stats["retries"] > 0, f"the faults should have cost re-sends: {stats}"
    # (a call takes the loop's way while the silent-loss rate makes its tail probes pay: how many do depends
    # on the losses the meter has seen, so only "some" is a fixed claim; runs == requests is the guarantee)
    assert calls > 0 and resends > 0, f"calls on the caller's thread: {calls} of 120, {resends} re-sent there"
    assert fw.runs() == stats["requests"] == 120, stats  # each RUN executed exactly once


def test_a_request_in_flight_on_the_loop_sends_a_call_the_loops_way(firmware_serial, tmp_path) -> None:
    sim = firmware_serial(seed=3, cable=True, board=board_file(tmp_path, paced=True))
    with connect(f"serial://{sim.host_path}?n_in=64&n_out=16&rate=20000&window=2&heartbeat=0") as board:
        future = board.submit(torch.rand(64, 64))  # 4 requests, ~0.25 s of board time
        _wait_for(lambda: board.aio._pending, 5, "the loop has requests in flight")
        assert board(torch.rand(2, 64)).shape == (2, 16)
        assert board.direct.calls == 0, "with the loop's requests in flight the call went the loop's way"
        assert future.result(timeout=30)[0].shape == (64, 16)
        _wait_for(lambda: not board.aio._pending, 5, "the loop's requests are done")
        for _ in range(2):  # (a loop that refused to lend the port is asked again every other call)
            assert board(torch.rand(2, 64)).shape == (2, 16)
        assert board.direct.calls >= 1, "nothing in flight: a call borrowed the port again"
        # two threads at once: one borrows the port, the other goes through the loop; both get answers
        out: list[torch.Tensor] = []
        threads = [threading.Thread(target=lambda: out.extend(board(torch.rand(1, 64)) for _ in range(20)))
                   for _ in range(2)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(out) == 40 and all(o.shape == (1, 16) for o in out)
        assert board.stats()["samples"] == 64 + 2 + 4 + 40


def test_a_heartbeat_between_calls_takes_the_port_back_and_a_later_call_borrows_it_again(firmware_serial) -> None:
    sim = firmware_serial(seed=4, cable=True)
    with connect(f"serial://{sim.host_path}?n_in=16&n_out=8&heartbeat=0.2") as board:
        board(torch.rand(2, 16))
        assert board.aio.transport._lent
        _wait_for(lambda: not board.aio.transport._lent, 10, "a heartbeat takes the port back")
        for _ in range(10):
            assert board(torch.rand(2, 16)).shape == (2, 8)
        stats = board.stats()
        assert board.direct.calls >= 5 and stats["reconnects"] == 0 and board.aio.connected


def test_an_unplug_during_a_direct_call_hands_the_request_to_the_loop_that_resends_it(counting, tmp_path, caplog):
    fw = counting(board_file(tmp_path, paced=True))
    with FaultyCable(fw.fd, Faults(), tmp_path) as cable:
        url = f"serial://{cable.path}?n_in=64&n_out=16&rate=2000&heartbeat=0"
        with connect(url) as board, caplog.at_level(logging.INFO, logger="pnn.link.client"):
            threading.Timer(0.15, cable.unplug, args=(0.3,)).start()  # mid-RUN: 16 x 72 ticks at 2 kS/s, ~0.6 s
            response = board(torch.rand(16, 64))
            # (its RESULT can come in on the new port before the HELLO's reply, which waits behind it)
            _wait_for(lambda: board.aio.connected, 10, "the link is back")
            stats = board.stats()
    assert response.shape == (16, 16) and stats["samples"] == 16 and stats["reconnects"] >= 1, stats
    assert any("handed to the link's loop" in r.getMessage() for r in caplog.records)
    assert fw.runs() == stats["requests"] == 1, "the re-send after the reconnect was answered from the cache"


def test_a_frozen_board_gives_up_by_time_and_the_loop_finishes_the_call(counting, tmp_path, caplog) -> None:
    fw = counting()
    with FaultyCable(fw.fd, Faults(), tmp_path) as cable:
        with connect(f"serial://{cable.path}?n_in=16&n_out=8&heartbeat=0&give_up=0.5", patience=60) as board:
            board(torch.rand(2, 16))
            os.kill(fw.proc.pid, signal.SIGSTOP)  # the board hangs: no reply, no error, the port stays open
            threading.Timer(1.5, os.kill, args=(fw.proc.pid, signal.SIGCONT)).start()
            start = time.monotonic()
            with caplog.at_level(logging.INFO, logger="pnn.link.client"):
                response = board(torch.rand(2, 16))
            waited = time.monotonic() - start
            stats = board.stats()
    assert response.shape == (2, 8) and waited > 1.0 and stats["retries"] >= 1
    gave_up = [r.getMessage() for r in caplog.records if "handed to the link's loop" in r.getMessage()]
    assert gave_up and re.search(r"no reply to request \d+ for \d+\.\d s", gave_up[0]), (
        "the caller's thread gave up by time and handed the request to the loop")
    assert fw.runs() == stats["requests"] == 2
