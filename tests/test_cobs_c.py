"""The C `cobs` codec the host frames with agrees with the pure-Python reference, byte for byte and
error for error; MicroPython never imports it."""

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pnn_protocol as P
from pnn_protocol import cobs, framing

ROOT = Path(__file__).resolve().parents[1]

# Inputs that reach the codec's corner cases: zeros, runs of exactly 253/254/255 non-zero bytes.
DATA = st.binary(max_size=1500) | st.lists(
    st.sampled_from([b"\x00", b"\x01" * 253, b"\x02" * 254, b"\x03" * 255, b"\x04"]), max_size=12
).map(b"".join)
# What a receiver may find between two delimiters: any bytes but 0x00 (valid COBS or not).
BODY = st.binary(max_size=700).map(lambda b: b.replace(b"\x00", b"\x01")) | DATA.map(cobs.encode).flatmap(
    lambda enc: st.integers(0, len(enc)).map(lambda k: enc[:k])  # cut anywhere: truncated frames
)


def test_the_c_codec_is_in_use_on_cpython():
    assert cobs.C_COBS is not None, "pip install cobs (a pyproject dependency)"
    assert framing.C_COBS is cobs.C_COBS


@settings(max_examples=400, deadline=None)
@given(DATA)
def test_same_bytes(data):
    assert cobs.fast_encode(data) == cobs.encode(data)
    assert cobs.fast_encode(memoryview(data)) == cobs.encode(data)
    assert cobs.fast_decode(cobs.encode(data)) == data


def _decoded(fn, body):
    try:
        return fn(body)
    except ValueError:
        return "error"


@settings(max_examples=400, deadline=None)
@given(BODY)
def test_same_decoding_of_anything(body):
    assert _decoded(cobs.fast_decode, body) == _decoded(cobs.decode, body)


def _events(stream: bytes, c_codec, monkeypatch) -> list:
    monkeypatch.setattr(framing, "C_COBS", c_codec)
    dec = P.FrameDecoder(300)
    return [e if isinstance(e, int) else bytes(e) for e in dec.feed(stream)]


@settings(max_examples=300, deadline=None)
@given(st.lists(DATA.map(P.frame) | BODY, max_size=6).map(lambda parts: b"\x00".join(parts)))
def test_frame_decoder_gives_the_same_events(stream):
    with pytest.MonkeyPatch.context() as mp:
        fast = _events(stream, cobs.C_COBS, mp)
        pure = _events(stream, None, mp)
    assert fast == pure


def test_micropython_never_imports_it(tmp_path):
    """A `cobs` module on MicroPython's path that would fail loudly if imported stays untouched."""
    (tmp_path / "cobs.py").write_text("raise RuntimeError('the C cobs package imported on MicroPython')\n")
    script = tmp_path / "t.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        f"sys.path.insert(0, {str(ROOT / 'protocol')!r})\n"
        "import pnn_protocol\n"
        "from pnn_protocol import cobs, framing\n"
        "assert cobs.C_COBS is None and 'cobs' not in sys.modules\n"
        "f = pnn_protocol.frame(b'\\x00\\x01\\x00')\n"
        "print(list(framing.FrameDecoder(64).feed(f))[0] == b'\\x00\\x01\\x00')\n"
    )
    exe = shutil.which("micropython")
    assert exe
    r = subprocess.run([exe, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stdout + r.stderr
