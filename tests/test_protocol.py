"""pnn_protocol: golden vectors on both interpreters, hypothesis round trips against msgpack, framing."""

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pnn_protocol as P
from pnn_protocol import errors, messages
from pnn_protocol.cobs import encode_into
from pnn_protocol.codec import DecodeError

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "protocol" / "vectors" / "check_vectors.py"


@pytest.mark.parametrize("interpreter", [sys.executable, "micropython"])
def test_golden_vectors(interpreter):
    exe = shutil.which(interpreter) or interpreter
    r = subprocess.run([exe, str(CHECK)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vectors ok" in r.stdout


def _sorted(obj):
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(x) for x in obj]
    return obj


def _plain(obj):
    """Decoded form -> comparable form (memoryview bins become bytes)."""
    if isinstance(obj, memoryview):
        return bytes(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    return obj


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=300)
    | st.binary(max_size=70000).filter(lambda b: len(b) < 300 or len(b) > 65530)
)
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=20) | st.dictionaries(st.text(max_size=40), kids, max_size=20),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_codec_matches_msgpack(obj):
    ours = P.packb(obj)
    theirs = msgpack.packb(_sorted(obj), use_bin_type=True)
    assert ours == theirs
    assert _plain(P.unpackb(theirs)) == obj
    assert msgpack.unpackb(ours, raw=False, strict_map_key=False) == obj


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_unpackb_garbage_only_raises_decode_error(data):
    try:
        P.unpackb(data)
    except DecodeError:
        pass


def test_codec_rejects_outside_subset():
    for bad in (
        msgpack.packb(msgpack.ExtType(5, b"x")),
        msgpack.packb({1: 2}),
        b"\x82\xa1a\x01\xa1a\x02",  # duplicate key
        b"\x91" * 10 + b"\x01",  # nesting 10 deep
        b"\xdd\xff\xff\xff\xff",  # array claiming 2**32-1 items in 5 bytes
        b"\xa2\xff\xfe",  # invalid UTF-8
    ):
        with pytest.raises(DecodeError):
            P.unpackb(bad)
    with pytest.raises(OverflowError):
        P.packb(2**64)


def _cobs_ref_decode(enc: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(enc):
        c = enc[i]
        out += enc[i + 1 : i + c]
        i += c
        if c < 255 and i < len(enc):
            out.append(0)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=1200)
    | st.lists(st.sampled_from([b"\x00", b"\x01" * 253, b"\x02" * 254, b"\x03"])).map(b"".join)
)
def test_cobs_round_trip(data):
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert _cobs_ref_decode(enc) == data
    assert P.cobs_decode(enc) == data
    out = bytearray(len(data) + 1 + len(data) // 254 + 3)
    end = encode_into(b"xy" + data, len(data), out, 3, 2)  # the firmware's in-place encoder agrees
    assert bytes(out[3:end]) == enc


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=6), st.data())
def test_frame_decoder_any_chunking(payloads, data):
    wire = b"".join(P.frame(p) for p in payloads)
    assert all(P.frame(p)[1:-1].find(b"\x00") < 0 for p in payloads)
    for p in payloads:  # the frame carries the payload and its CRC32, little-endian
        assert P.cobs_decode(P.frame(p)[1:-1]) == p + struct.pack("<I", zlib.crc32(p))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    dec = P.FrameDecoder(max(P.frame_len(len(p)) for p in payloads))
    got, prev = [], 0
    for c in cuts + [len(wire)]:
        got += [bytes(ev) if not isinstance(ev, int) else ev for ev in dec.feed(wire[prev:c])]
        prev = c
    assert got == payloads


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_frame_decoder_resyncs_after_garbage(garbage):
    good = P.frame(P.packb(messages.ping(9)))
    dec = P.FrameDecoder(64)
    evs = [bytes(e) if not isinstance(e, int) else e for e in dec.feed(garbage + good)]
    assert evs[-1] == P.packb(messages.ping(9))
    assert all(e in (errors.BAD_CRC, errors.BAD_FRAME, errors.TOO_LONG) for e in evs[:-1])


def test_frame_decoder_drops_oversize_without_buffering():
    dec = P.FrameDecoder(100)
    buf = dec.buf
    evs = []
    for _ in range(1000):  # 100 kB of one endless frame, streamed
        evs += list(dec.feed(b"\x07" * 100))
    assert evs == [] and dec.buf is buf and len(buf) == 100
    good = P.frame(b"\x01\x02\x03")
    evs = [e if isinstance(e, int) else bytes(e) for e in dec.feed(b"\x00" + good)]
    assert evs == [errors.TOO_LONG, b"\x01\x02\x03"]


def test_frame_decoder_errors():
    good = P.frame(b"hello")
    bad_crc = bytearray(good)
    bad_crc[2] ^= 0x40
    dec = P.FrameDecoder(64)
    assert list(dec.feed(bytes(bad_crc))) == [errors.BAD_CRC]
    assert list(dec.feed(good[:4] + b"\x00")) == [errors.BAD_FRAME]  # truncated: block runs past the end
    assert list(dec.feed(b"\x00\x02\x01\x00")) == [errors.BAD_FRAME]  # shorter than a CRC
    assert list(dec.feed(b"\x00\x00")) == []


@pytest.mark.parametrize("max_frame", [16, 253, 254, 255, 1000, 17408, 65536])
def test_limits_are_tight(max_frame):
    p = P.max_payload(max_frame)
    assert P.frame_len(p) <= max_frame < P.frame_len(p + 1) + 1
    worst = bytes([1]) * p  # no zeros: the worst COBS overhead
    assert len(P.frame(worst)) - 2 <= max_frame
    n = P.max_codes(max_frame)
    if n == 0:  # too small to carry any RUN at all
        assert max_frame < messages.RUN_OVERHEAD + 8
        return
    run = messages.run(2**32 - 1, bytes(2 * n), n, 1, 2**32 - 1, 2**32 - 1, 2**32 - 1, 1)
    assert len(P.packb(run)) <= p


CAPS = {
    "max_batch": 4,
    "max_drive": 64,
    "max_out": 32,
    "min_rate": 1000,
    "max_rate": 50000,
    "max_oversample": 8,
    "max_settle": 100,
    "max_codes": 120,
}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"batch": 0}, errors.OUT_OF_RANGE),
        ({"batch": 5}, errors.OUT_OF_RANGE),
        ({"batch": "2"}, errors.BAD_FIELD),
        ({"batch": True}, errors.BAD_FIELD),
        ({"n_out": 17}, errors.OUT_OF_RANGE),  # > n_drive
        ({"rate": 999}, errors.OUT_OF_RANGE),
        ({"oversample": 9}, errors.OUT_OF_RANGE),
        ({"settle": -1}, errors.OUT_OF_RANGE),
        ({"drive": bytes(31)}, errors.BAD_FIELD),
        ({"drive": [0] * 32}, errors.BAD_FIELD),
        ({"batch": 0, "n_drive": "x"}, errors.OUT_OF_RANGE),  # field by field: batch is checked whole first
        ({"oversample": None, "settle": None}, None),  # nil in an optional field counts as absent
        ({"batch": None}, errors.BAD_FIELD),  # ... and in a required one as missing
        ({"drive_width": 1, "drive": bytes(16)}, errors.OUT_OF_RANGE),  # the board did not offer uint8
        ({"drive_width": 3}, errors.OUT_OF_RANGE),
        ({"drive_width": "1"}, errors.BAD_FIELD),
        (
            {"batch": 4, "n_drive": 64, "n_out": 32, "drive": bytes(512)},
            errors.OUT_OF_RANGE,
        ),  # RESULT > max_codes
    ],
)
def test_check_run_errors(change, code):
    m = messages.run(3, bytes(32), 1, 16, 20000, n_out=4)
    m.update(change)
    if code is None:
        assert messages.check_run(m, CAPS, 3)[4:6] == (1, 0)
        return
    with pytest.raises(P.ProtocolError) as e:
        messages.check_run(m, CAPS, 3)
    assert e.value.code == code and e.value.req_id == 3


def test_check_run_uint8_drive():
    caps = dict(CAPS, drive_widths=[1, 2])
    m = messages.run(3, bytes(32), 2, 16, 20000, n_out=4, drive_width=1)
    assert m["drive_width"] == 1 and "drive_width" not in messages.run(3, bytes(64), 2, 16, 20000)
    drive, *rest = messages.check_run(P.unpackb(P.packb(m)), caps, 3)
    assert len(drive) == 32 and rest == [2, 16, 20000, 1, 0, 4, 1]
    with pytest.raises(P.ProtocolError) as e:  # uint8 length is batch * n_drive bytes
        messages.check_run(dict(m, drive=bytes(64)), caps, 3)
    assert e.value.code == errors.BAD_FIELD


def test_check_run_ok_and_envelope():
    m = messages.run(3, bytes(64), 2, 16, 20000, n_out=4)
    drive, *rest = messages.check_run(P.unpackb(P.packb(m)), CAPS, 3)
    assert bytes(drive) == bytes(64) and rest == [2, 16, 20000, 1, 0, 4, 2]
    assert messages.check_request(m) == ("run", 3)
    r = messages.result(3, bytes(16), 2, 4, 50, 0)
    assert messages.check_response(P.unpackb(P.packb(r))) == ("result", 3)
    with pytest.raises(P.ProtocolError) as e:
        messages.check_response(P.unpackb(P.packb(dict(r, resp=bytes(3)))))
    assert e.value.code == errors.BAD_FIELD


@pytest.mark.parametrize(
    "data",
    [
        b"\x07" * 254,
        b"\x07" * 508,
        b"\x05\x00" + b"\x07" * 300 + b"\x00\x01",
        b"\x00" * 3 + b"\x09" * 254 + b"\x00",
    ],
)
def test_long_runs_through_the_frame_decoder(data):
    """Runs of 254+ non-zero bytes need 0xFF blocks; the decoder's fast path hands over mid-frame."""
    evs = [bytes(e) for e in P.FrameDecoder(1000).feed(P.frame(data))]
    assert evs == [data]
