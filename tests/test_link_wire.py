"""The host's fast codec (pnn.link.wire) gives pnn_protocol's bytes and pnn_protocol's verdicts.

Framing against the reference FrameDecoder on any stream cut into any chunks (valid frames, damaged
ones, oversized ones, garbage), payloads against the pure-Python packb, and the RESULT check against
messages.check_response on RESULTs with every field broken in turn.
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pnn_protocol as P
from pnn.link import wire
from pnn_protocol import messages
from pnn_protocol.errors import ProtocolError

MAX_FRAME = 300
PAYLOAD = st.binary(min_size=1, max_size=400) | st.lists(
    st.sampled_from([b"\x00", b"\x01" * 253, b"\x02" * 254, b"\x03" * 255, b"\x04"]), min_size=1, max_size=3
).map(b"".join)
# frames, frames with a byte changed (bad CRC or bad COBS), bare bytes between delimiters, empty frames
PIECE = (PAYLOAD.map(P.frame) | st.tuples(PAYLOAD.map(P.frame), st.integers(1, 10**6), st.integers(1, 255)).map(
    lambda t: t[0][: t[1] % len(t[0])] + bytes([t[2]]) + t[0][t[1] % len(t[0]) + 1 :])
    | st.binary(max_size=600) | st.just(b"\x00"))  # fmt: skip


def _reference(stream: bytes) -> list:
    return [e if isinstance(e, int) else bytes(e) for e in P.FrameDecoder(MAX_FRAME).feed(stream)]


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECE, max_size=8).map(b"".join), st.lists(st.integers(0, 2000), max_size=6))
def test_the_frame_reader_gives_the_reference_decoders_events_however_the_stream_is_cut(stream, cuts) -> None:
    reader, got, last = wire.FrameReader(MAX_FRAME), [], 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        got += reader.feed(stream[last:cut])
        last = cut
    assert got == _reference(stream)
    assert len(reader._part) <= MAX_FRAME  # what it keeps of an unfinished frame stays within the bound


def test_an_oversized_frame_is_dropped_as_it_streams_and_reported_once() -> None:
    reader = wire.FrameReader(MAX_FRAME)
    assert reader.feed(b"\x01" * 200) == [] and reader.feed(b"\x01" * 200) == []
    assert reader._part == b"" and reader._drop  # nothing of it kept
    ok = P.frame(b"after")
    assert reader.feed(b"\x01" * 50 + ok) == [P.errors.TOO_LONG, b"after"]
    reader.feed(b"\x05partial")
    reader.reset()
    assert reader.feed(ok) == [b"after"]


@settings(max_examples=300, deadline=None)
@given(PAYLOAD)
def test_frames_are_the_reference_bytes(payload) -> None:
    assert wire.frame(payload) == P.frame(payload)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "t", "id", "drive", "batch", "n_out", "set", "zz", "a"]),
                       st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=300) | st.text(max_size=20) | st.none()
                       | st.booleans()))  # fmt: skip
def test_payloads_are_the_reference_bytes_whatever_order_the_keys_came_in(msg) -> None:
    assert wire.encode(msg) == P.packb(msg)
    assert wire.encode(dict(reversed(msg.items()))) == P.packb(msg)


@pytest.mark.parametrize("width", [1, 2])
def test_run_request_is_messages_run_with_its_keys_in_order(width) -> None:
    args = (b"\x01\x02" * 6, 3, 4 // width, 20000, 2, 7, 3, width)
    for rid in (5, 2**32 - 1):
        got, want = wire.run_request(rid, *args), messages.run(rid, *args)
        assert got == want and list(got) == sorted(want)
        assert wire.encode(got) == P.packb(want)


def _result(**change) -> dict:
    msg = dict(messages.result(7, bytes(12), 2, 3, 50, 0), **change)
    return {k: v for k, v in msg.items() if v is not KeyError}


BROKEN = [dict(v=2), dict(v=True), dict(v=None), dict(id=-1), dict(id=2**32), dict(id=True), dict(id=1.0),
          dict(id=KeyError), dict(batch=0), dict(batch=True), dict(batch=KeyError), dict(n_out=2**32),
          dict(resp=bytes(11)), dict(resp="x" * 12), dict(resp=KeyError), dict(period_us=-1), dict(period_us=0.5),
          dict(overruns=2**32), dict(overruns=KeyError), dict(id=None), dict(t=KeyError)]  # fmt: skip


@pytest.mark.parametrize("change", [{}, dict(id=0), dict(id=2**32 - 1), dict(extra=[1])] + BROKEN, ids=str)
def test_a_result_is_accepted_or_refused_as_check_response_does(change) -> None:
    msg = _result(**change)
    payload = msgpack.packb(msg, use_bin_type=True)
    try:
        want = messages.check_response(msgpack.unpackb(payload))
    except ProtocolError as e:
        with pytest.raises(ProtocolError) as got:
            wire.decode(payload)
        assert (got.value.code, str(got.value)) == (e.code, str(e))
        return
    got = wire.decode(payload)
    assert (got["t"], got["id"]) == want and got == msgpack.unpackb(payload)
