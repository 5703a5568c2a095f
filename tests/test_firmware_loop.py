"""The firmware under real MicroPython (256 KiB heap) on a real pty: every answer as SPEC.md says, and a
RUN still works after each bad input."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from pnn.link.sync import StreamLink, SyncClient
from pnn_protocol import ProtocolError, errors, frame, messages, packb

ROOT = Path(__file__).resolve().parents[1]
BOARD = json.loads((ROOT / "firmware" / "boards" / "sim.json").read_text())


def codes(values) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


def uncodes(blob) -> list[int]:
    return list(struct.unpack(f"<{len(blob) // 2}H", blob))


@pytest.fixture
def client(firmware_serial) -> SyncClient:
    sim = firmware_serial(seed=1)
    c = SyncClient(StreamLink(sim.fd), timeout=5.0)
    c.sim = sim
    return c


def assert_run_works(c: SyncClient) -> None:
    r = c.run(codes([10, 200] * 32), 1, 64, 20000, n_out=8)
    assert r["t"] == "result" and len(r["resp"]) == 16


def test_hello(client):
    r = client.hello()
    assert (r["device"], r["board"], r["proto"], r["v"]) == ("sim-0", "sim", 1, 1)
    assert isinstance(r["fw"], str) and r["fw"]
    caps = r["caps"]
    for key in (
        "dac_bits",
        "adc_bits",
        "max_drive",
        "max_batch",
        "max_out",
        "min_rate",
        "max_rate",
        "max_frame",
    ):
        assert caps[key] == BOARD[key], key
    assert caps["max_codes"] >= BOARD["max_batch"] * BOARD["max_drive"]  # the board's limits fit a frame
    assert caps["hal"]["seed"] == 1


@pytest.mark.parametrize(
    ("batch", "n_drive", "n_out"), [(1, 1, 1), (1, 256, 16), (4, 128, 128), (16, 512, 512)]
)
def test_run_sizes(client, batch, n_drive, n_out):
    rng = random.Random(batch * n_drive)
    drive = [rng.randrange(256) for _ in range(batch * n_drive)]
    r = client.run(codes(drive), batch, n_drive, 20000, settle=4, n_out=n_out)
    assert (r["batch"], r["n_out"]) == (batch, n_out)
    resp = uncodes(r["resp"])
    assert len(resp) == batch * n_out
    assert all(0 <= v < 4096 for v in resp)
    assert r["period_us"] >= 0 and r["overruns"] == 0


def test_run_measures_the_circuit(client):
    """Drive held low vs high: the 2N3904 stage inverts, so the ADC reads much higher for code 0."""
    r = client.run(codes([0] * 64 + [255] * 64), 2, 64, 20000, settle=64, n_out=1)
    low, high = uncodes(r["resp"])
    assert low > high + 1000


def test_ping_echoes_binary_data(client):
    data = bytes([0, 3, 0, 255, 3, 3]) + bytes(range(100))
    r = client.ping(data)
    assert r["t"] == "pong" and bytes(r["data"]) == data
    with pytest.raises(ProtocolError) as e:
        client.ping(bytes(300))  # over max_ping
    assert e.value.code == errors.OUT_OF_RANGE


def _raw_error(c: SyncClient, data: bytes) -> dict:
    c.link.write_raw(data)
    r = c.wait_for(None)
    assert r["t"] == "error", r
    return r


def test_bad_crc(client):
    good = bytearray(frame(packb(messages.ping(5))))
    good[4] ^= 0x10
    r = _raw_error(client, bytes(good))
    assert (r["code"], r["id"]) == (errors.BAD_CRC, None)
    assert_run_works(client)


def test_truncated_frame(client):
    wire = frame(packb(messages.run(6, codes(range(64)), 1, 64, 20000)))
    r = _raw_error(client, wire[:40] + b"\x00")
    assert (r["code"], r["id"]) == (errors.BAD_FRAME, None)
    assert_run_works(client)


def test_oversize_frame_dropped_unbuffered(client):
    """1 MiB without a delimiter, against a 256 KiB heap: dropped as it streams, one TOO_LONG."""
    chunk = bytes([0x42]) * 65536
    for _ in range(16):
        client.link.write_raw(chunk)
    r = _raw_error(client, b"\x00")
    assert (r["code"], r["id"]) == (errors.TOO_LONG, None)
    assert_run_works(client)
    assert "MemoryError" not in client.sim.stderr()


def test_unknown_type(client):
    r = client.request({"v": 1, "t": "launch", "id": 77})
    assert (r["t"], r["code"], r["id"]) == ("error", errors.UNKNOWN_TYPE, 77)
    assert_run_works(client)


def test_wrong_version(client):
    r = client.request({"v": 2, "t": "ping", "id": 78})
    assert (r["t"], r["code"], r["id"]) == ("error", errors.BAD_VERSION, 78)
    assert_run_works(client)


def test_bad_payload(client):
    client.link.send(b"\xc1\x00\x03")
    r = client.wait_for(None)
    assert (r["t"], r["code"], r["id"]) == ("error", errors.BAD_PAYLOAD, None)
    assert_run_works(client)


def test_garbage_between_frames(client):
    ping = frame(packb(messages.ping(90)))
    client.link.write_raw(ping + b"noise\x13\x03 on the line" + ping)
    first = client.wait_for(90)
    err = client.wait_for(None)
    assert first["t"] == "pong"
    assert (err["t"], err["code"], err["id"]) == ("error", errors.BAD_FRAME, None)
    assert client.wait_for(90)["t"] == "pong"
    assert_run_works(client)


def test_random_garbage_never_kills_it(client):
    rng = random.Random(7)
    blob = bytes(rng.randrange(256) for _ in range(20000))
    client.link.write_raw(blob + b"\x00")
    assert_run_works(client)
    assert client.link.frame_errors == []  # whatever the device said was well framed


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"rate": 10**6}, errors.OUT_OF_RANGE),
        ({"batch": BOARD["max_batch"] + 1}, errors.OUT_OF_RANGE),
        ({"n_out": 65}, errors.OUT_OF_RANGE),
        ({"drive": codes([300] * 64)}, errors.OUT_OF_RANGE),  # above the 8-bit DAC
        ({"drive": codes([1] * 63)}, errors.BAD_FIELD),
        ({"oversample": "2"}, errors.BAD_FIELD),
    ],
)
def test_run_rejected(client, change, code):
    msg = messages.run(40, codes([1] * 64), 1, 64, 20000, n_out=8)
    msg.update(change)
    r = client.request(msg)
    assert (r["t"], r["code"], r["id"]) == ("error", code, 40)
    assert_run_works(client)


def test_duplicate_run_id_replays_the_result(client):
    drive = codes([100] * 128)
    first = client.run(drive, 1, 128, 20000, n_out=128, req_id=500)
    again = client.run(drive, 1, 128, 20000, n_out=128, req_id=500)
    assert bytes(again["resp"]) == bytes(first["resp"])  # ADC noise would make a re-run differ
    other = client.run(codes([7] * 4), 1, 4, 20000, req_id=500)  # same id, other content: still the cache
    assert bytes(other["resp"]) == bytes(first["resp"])
    fresh = client.run(drive, 1, 128, 20000, n_out=128, req_id=501)
    assert bytes(fresh["resp"]) != bytes(first["resp"])
    # the cache keeps several recent RESULTs, and RESET forgets them
    for rid in range(502, 506):
        client.run(drive, 1, 128, 20000, n_out=128, req_id=rid)
    assert bytes(client.run(drive, 1, 128, 20000, n_out=128, req_id=501)["resp"]) == bytes(fresh["resp"])
    assert client.request(messages.reset(9))["t"] == "reset"
    assert bytes(client.run(drive, 1, 128, 20000, n_out=128, req_id=501)["resp"]) != bytes(fresh["resp"])


def test_config_and_reset(client):
    assert client.request(messages.config_request(1))["config"] == {"rest_code": BOARD["rest_code"]}
    r = client.request(messages.config_request(2, {"rest_code": 128}))
    assert r["config"] == {"rest_code": 128}
    for bad, code in (({"nope": 1}, errors.BAD_FIELD), ({"rest_code": 256}, errors.OUT_OF_RANGE),
                      ({"rest_code": 5, "nope": 1}, errors.BAD_FIELD)):  # fmt: skip
        r = client.request(messages.config_request(3, bad))
        assert (r["t"], r["code"]) == ("error", code)
    assert client.request(messages.config_request(4))["config"] == {"rest_code": 128}  # all or nothing
    r = client.request(messages.reset(5, hard=True))
    assert (r["t"], r["code"]) == ("error", errors.UNSUPPORTED)
    assert client.request(messages.reset(6))["t"] == "reset"
    assert client.request(messages.config_request(7))["config"] == {"rest_code": BOARD["rest_code"]}


def test_repl_request_ends_serving(client):
    r = client.request(messages.repl(11))
    assert (r["t"], r["id"]) == ("repl", 11)
    assert client.sim.proc.wait(10) == 0
