"""Fuzzing the host's receive path: what a board (or the line) sends can be refused, never crash us.

Hypothesis drives the frame decoder and the message decoder (pnn.link.wire) with arbitrary and
mutated bytes; the real transports (serial on a pty, MQTT through mosquitto) are fed garbage between
good messages; and bench/fuzz.py's long-run machinery runs with a small count (the bench does 1M).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tty
from pathlib import Path

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pnn.link.mqtt import MqttTransport
from pnn.link.serial import HOST_MAX_FRAME, SerialTransport
from pnn.link.url import parse_url
from pnn.link.wire import decode
from pnn_protocol import FrameDecoder, ProtocolError, frame, messages, packb

_spec = importlib.util.spec_from_file_location("bench_fuzz", Path(__file__).parents[1] / "bench" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(fuzz)  # type: ignore[union-attr]

GOOD = [
    packb(messages.result(7, bytes(range(32)), 2, 8, 50, 0)),
    packb(messages.pong(8, b"\x00\x03\xff")),
    packb(messages.error(None, 1, "frame CRC32 mismatch")),
    packb(messages.hello(9, "sim-0", "0.1.0", "sim", {"max_frame": 17408})),
]
SENTINEL = packb(messages.pong(4242))


def receive(data: bytes, chunks: list[int]) -> tuple[list[dict], int]:
    """The serial transport's path: frame decoder, then message decoder; (messages, refused frames)."""
    decoder = FrameDecoder(HOST_MAX_FRAME)
    got, refused, pos, k = [], 0, 0, 0
    while pos < len(data):
        step = chunks[k % len(chunks)] if chunks else len(data)
        for res in decoder.feed(data[pos : pos + step]):
            if isinstance(res, int):
                refused += 1
                continue
            try:
                got.append(decode(bytes(res)))
            except ProtocolError:
                refused += 1
        pos, k = pos + step, k + 1
    return got, refused


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=8))
def test_any_bytes_are_refused_or_decoded_never_a_crash(data: bytes, chunks: list[int]) -> None:
    got, _ = receive(data, chunks)
    for msg in got:
        fuzz.check_message(msg)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(GOOD), st.data())
def test_a_damaged_frame_is_lost_alone_and_never_taken_for_another(
    payload: bytes, data: st.DataObject
) -> None:
    wire = bytearray(frame(payload))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    got, _ = receive(bytes(wire) + frame(SENTINEL), data.draw(st.lists(st.integers(1, 64), max_size=4)))
    assert got and got[-1] == decode(SENTINEL), "the frame after the damage arrives intact"
    assert all(m == decode(payload) for m in got[:-1])  # what came through is the original or nothing


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(GOOD), st.binary(min_size=1, max_size=12), st.integers(0, 200))
def test_a_mutated_bare_payload_is_refused_or_well_formed(payload: bytes, junk: bytes, at: int) -> None:
    # MQTT carries payloads without a CRC: whatever decodes must still be a well-formed response
    for candidate in (payload[:at] + junk + payload[at:], payload[:at] + junk, junk + payload[at:]):
        try:
            fuzz.check_message(decode(candidate))
        except ProtocolError:
            pass


def test_an_error_with_an_unreadable_id_is_read_as_nil() -> None:
    # found by the fuzzer: an id that is a map reached the Device core, which uses ids as dict keys
    msg = decode(packb({"v": 1, "t": "error", "id": {}, "code": 1, "msg": "x"}))
    assert msg["id"] is None


def test_a_long_mutation_run_finds_no_crash_and_no_undetected_damage() -> None:
    report = fuzz.fuzz_host(20_000, seed=3)
    assert report["crashes"] == 0, report["failures"]
    assert report["undetected"] == 0 and report["sentinels_lost"] == 0
    assert report["framing_errors"] > 15_000 and report["payloads_refused"] > 15_000  # it did bite


def test_serial_transport_skips_garbage_between_messages(tmp_path) -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    garbage = [b"\x00\x05junk", b"\x01\x02\x03\x00", frame(b"\xc1"), frame(packb({"t": "run"}))]
    good = [messages.pong(1), messages.result(2, b"\x01\x00" * 4, 1, 4, 50, 0)]

    async def go() -> tuple[list[dict], int]:
        link = SerialTransport(parse_url(f"serial://{os.ttyname(slave)}"))
        await link.open()
        os.write(master, garbage[0] + frame(packb(good[0])) + b"".join(garbage[1:]) + frame(packb(good[1])))
        got = [await asyncio.wait_for(link.recv(), 5), await asyncio.wait_for(link.recv(), 5)]
        await link.close()
        return got, link.bad_frames

    try:
        got, bad = asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)
    assert [m["id"] for m in got] == [1, 2]
    assert bad == 4  # "junk" (BAD_FRAME), the 01 02 03 run, a non-map payload, a response-less "run"


def test_mqtt_transport_skips_garbage_payloads(mosquitto) -> None:
    host, port = mosquitto
    url = parse_url(f"mqtt://{host}:{port}/fz?n_in=8&n_out=8")

    async def go() -> tuple[dict, int]:
        link = MqttTransport(url)
        await link.open()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect(host, port)
        pub.loop_start()
        for payload in (
            b"",
            b"\xc1",
            b"\x93\x01\x02\x03",
            packb({"v": 1, "t": "result", "id": 3}),
            packb(messages.pong(5)),
        ):
            pub.publish("pnn/fz/resp", payload, qos=1).wait_for_publish(5)
        msg = await asyncio.wait_for(link.recv(), 5)
        pub.loop_stop()
        pub.disconnect()
        await link.close()
        return msg, link.bad_frames

    msg, bad = asyncio.run(go())
    assert msg["id"] == 5 and bad == 4
