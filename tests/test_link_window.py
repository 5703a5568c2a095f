"""The window and fast retransmit of the Device core, against a scripted board on a real pty.

The board here is a thread speaking protocol v1 on the pty master (HELLO, RUN -> RESULT, replays by
id as the firmware's RESULT cache does) with one twist per test: it holds back one reply, or answers
with damaged frames. What is checked is what the host sent it.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable

import msgpack
import numpy as np
import pytest

from pnn.devices import connect
from pnn_protocol import FrameDecoder, frame
from pnn_protocol import messages as m

N_IN, N_OUT = 8, 4
CAPS = {"dac_bits": 8, "adc_bits": 12, "max_drive": 64, "max_batch": 8, "max_out": 64, "max_codes": 4000,
        "drive_widths": [1, 2], "min_rate": 1, "max_rate": 1_000_000, "max_oversample": 16, "max_settle": 1000,
        "max_frame": 8192, "cache": 8, "cache_bytes": 8192, "max_ping": 64, "rest_code": 0, "hal": {}}  # fmt: skip


def _pack(msg: dict) -> bytes:
    return frame(msgpack.packb(dict(sorted(msg.items())), use_bin_type=True))


class ScriptedBoard(threading.Thread):
    """A board on a pty: `answer(rid, times_seen) -> bytes | None` decides each RUN's reply (None: hold it)."""

    def __init__(self, answer: Callable[[int, int], bytes | None], caps: dict | None = None) -> None:
        super().__init__(daemon=True)
        self.caps = CAPS if caps is None else caps
        self.master, slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.answer, self.seen, self.order = answer, {}, []  # RUN ids: times received, and first-arrival order
        self.answered: set[int] = set()  # RUN ids given a good RESULT
        self.spread = 0  # most RUNs first seen from the oldest unanswered one to a new one, inclusive
        self.stop = False
        self.start()

    @staticmethod
    def result(rid: int) -> bytes:
        return _pack(m.result(rid, bytes(2 * N_OUT), 1, N_OUT, 50, 0))

    def run(self) -> None:
        dec = FrameDecoder(1 << 16)
        while not self.stop:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the host has not opened the port (yet, or any more)
                time.sleep(0.005)
                continue
            for p in dec.feed(data):
                if isinstance(p, int):
                    continue
                q = msgpack.unpackb(p)
                rid = q["id"]
                if q["t"] == m.HELLO:
                    os.write(self.master, _pack(m.hello(rid, "scripted-0", "test", "sim", self.caps)))
                elif q["t"] == m.RUN:
                    self.seen[rid] = self.seen.get(rid, 0) + 1
                    if self.seen[rid] == 1:
                        self.order.append(rid)
                        waiting = [i for i, r in enumerate(self.order) if r not in self.answered]
                        self.spread = max(self.spread, len(self.order) - waiting[0])
                    reply = self.answer(rid, self.seen[rid])
                    if reply is not None:
                        os.write(self.master, reply)
                        if reply == self.result(rid):
                            self.answered.add(rid)
                else:
                    os.write(self.master, _pack(m.pong(rid, q.get("data"))))

    def close(self) -> None:
        self.stop = True
        self.join(5)
        os.close(self.master)


@pytest.fixture
def scripted():
    boards: list[ScriptedBoard] = []

    def make(answer: Callable[[int, int], bytes | None], caps: dict | None = None) -> ScriptedBoard:
        boards.append(ScriptedBoard(answer, caps))
        return boards[-1]

    yield make
    for b in boards:
        b.close()


def _url(path: str, window: int) -> str:
    return f"serial://{path}?n_in={N_IN}&n_out={N_OUT}&chunk=1&window={window}&heartbeat=0&timeout=0.2"


def _first_held_back() -> Callable[[int, int], bytes | None]:
    """A board's answers where the first RUN's reply is lost three times (only its fourth send is answered)."""
    first: list[int] = []

    def answer(rid: int, seen: int) -> bytes | None:
        if not first:
            first.append(rid)
        if rid == first[0] and seen <= 3:
            return None  # lost, and its first re-sends too: only a later one gets an answer
        return ScriptedBoard.result(rid)

    return answer


def test_a_window_slot_frees_only_when_every_older_run_is_done(scripted) -> None:
    """The first RUN's reply is held back for three sends: meanwhile the others are answered, but no
    RUN may go out more than `window` ahead of it (a board's RESULT cache must still hold its reply)."""
    board = scripted(_first_held_back())
    with connect(_url(board.path, window=3)) as dev:
        out = dev(np.random.default_rng(0).random((12, N_IN), dtype=np.float32))
        stats = dev.stats()
    assert out.shape == (12, N_OUT) and stats["requests"] == 12 and len(board.order) == 12
    assert board.seen[board.order[0]] >= 4, "the held-back RUN should have been re-sent until answered"
    assert board.spread <= 3, f"a RUN went out {board.spread - 1} places after one still unanswered (window 3)"


def test_the_window_is_lowered_to_what_the_boards_result_cache_keeps(scripted, caplog) -> None:
    """A board whose cache_bytes keeps only 2 RESULTs of this size (SPEC 4: min(cache, cache_bytes // s - 1))
    gets at most 2 RUNs in flight though the URL asks for 4, and the host says so in one line."""
    s = 2 * 1 * N_OUT + m.RUN_OVERHEAD + 4  # the largest RESULT of one example, as the cache stores it
    board = scripted(_first_held_back(), CAPS | {"cache_bytes": 3 * s})
    with caplog.at_level("WARNING", logger="pnn"), connect(_url(board.path, window=4)) as dev:
        assert dev.aio.window == 2
        out = dev(np.random.default_rng(2).random((12, N_IN), dtype=np.float32))
    assert out.shape == (12, N_OUT) and len(board.order) == 12
    assert board.spread <= 2, f"a RUN went out {board.spread - 1} places after one still unanswered (cache keeps 2)"
    lines = [r.getMessage() for r in caplog.records if "window=4 lowered to 2" in r.getMessage()]
    assert len(lines) == 1 and "cache_bytes=" in lines[0] and "window <= 2" in lines[0], lines


def test_a_damaged_reply_resends_one_request_not_all_in_flight(scripted) -> None:
    """Each RUN is answered by a damaged frame the first two times: a host that re-sent every request in
    flight per damaged frame would flood the board; one re-send per damaged frame keeps it bounded."""

    def answer(rid: int, seen: int) -> bytes | None:
        if seen <= 2:
            good = bytearray(ScriptedBoard.result(rid))
            good[len(good) // 2] ^= 0x5A  # one byte flipped: a CRC failure on the host
            return bytes(good)
        return ScriptedBoard.result(rid)

    board = scripted(answer)
    with connect(_url(board.path, window=4)) as dev:
        out = dev(np.random.default_rng(1).random((16, N_IN), dtype=np.float32))
        stats = dev.stats()
    assert out.shape == (16, N_OUT) and stats["requests"] == 16
    assert stats["bad_frames"] >= 32
    # a reply answered only after re-sends times nothing (Karn's rule), so every fast re-send here
    # answers one damaged frame (re-sending all in flight per damaged frame makes more)
    assert stats["fast_resends"] <= stats["bad_frames"], stats
    assert sum(board.seen.values()) <= 3 * 16 + stats["retries"], (board.seen, stats)
