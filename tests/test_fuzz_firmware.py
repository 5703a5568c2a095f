"""Fuzzing the firmware under real MicroPython with a board-sized heap (256 KiB): malformed frames over a
pty and malformed payloads over MQTT get their ERRORs, and the board keeps serving in bounded memory.

The pty run is bench/fuzz.py's machinery with 2,000 frames (the bench sends 10,000): a mirror of the
firmware's frame decoder says which answer each frame is owed, so every answer is checked, not counted.
"""

from __future__ import annotations

import importlib.util
import random
import struct
from pathlib import Path

from pnn.link.sync import MqttLink, StreamLink, SyncClient
from pnn.link.wire import decode
from pnn_protocol import errors, messages, packb

_spec = importlib.util.spec_from_file_location("bench_fuzz", Path(__file__).parents[1] / "bench" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(fuzz)  # type: ignore[union-attr]

FRAMING_AND_ENVELOPE = ("BAD_CRC", "BAD_FRAME", "TOO_LONG", "BAD_PAYLOAD", "BAD_VERSION", "UNKNOWN_TYPE")


def test_2000_malformed_frames_over_a_pty_each_get_their_answer(firmware_serial) -> None:
    sim = firmware_serial(seed=4)  # micropython -X heapsize=256k
    report = fuzz.fuzz_firmware(sim.fd, sim.proc, 2000, seed=4)
    assert report["crashes"] == 0 and report["hangs"] == 0, sim.stderr()
    assert report["answers"] == report["answers_due"] >= 2000 and report["miscounted"] == 0
    assert report["wrong_answers"] == 0, report["wrong_examples"]
    assert report["unreadable_answers"] == 0
    codes = report["errors_by_code"]
    assert all(codes.get(name, 0) > 10 for name in (*FRAMING_AND_ENVELOPE, "BAD_FIELD", "OUT_OF_RANGE")), (
        codes
    )
    assert "INTERNAL" not in codes, report["internal_reasons"]  # hostile requests are refused, not survived
    assert report["still_serving"] == {"hello": True, "largest_run": True, "largest_ping": True}
    # the heap is fixed at 256 KiB; what the process holds beyond it must not grow with the abuse
    growth = report["rss_kib_after"]["VmRSS"] - report["rss_kib_before"]["VmRSS"]
    assert growth < 1024, report


def test_requests_too_big_to_decode_are_refused_before_they_are_built(firmware_serial) -> None:
    sim = firmware_serial(seed=2)
    client = SyncClient(StreamLink(sim.fd), timeout=5.0)
    base = messages.ping(11)
    hostile = [
        {**base, "x": [None] * 8000},  # 8,000 list slots: more than the heap left over
        {**base, "x": {f"k{i}": i for i in range(65)}},
        {**base, "x": "y" * 5000},
        {**base, "x": [[[]] * 30] * 30},
    ]
    for msg in hostile:
        client.link.send(packb(msg))
        reply = client.wait_for(None)
        assert (reply["t"], reply["code"], reply["id"]) == ("error", errors.BAD_PAYLOAD, None), reply
    assert client.ping(b"still here")["data"] == b"still here"
    limits = client.request({**messages.ping(12), "x": [None] * 40})  # within the budget: ignored, served
    assert limits["t"] == "pong"


def test_malformed_payloads_over_mqtt_each_get_one_answer(mosquitto, firmware_mqtt) -> None:
    firmware_mqtt(mosquitto, "fz", seed=1)
    link = MqttLink(*mosquitto, "fz")
    client = SyncClient(link, timeout=5.0)
    caps = client.hello()["caps"]
    rng = random.Random(1)
    maker = fuzz.RequestMaker(caps, rng)
    kinds = set()
    for k in range(300):
        payload = maker.hostile() if k % 2 else fuzz.mutate(packb(maker.valid()), rng)
        if fuzz._holds_repl(fuzz.frame(payload)):
            continue
        link.send(payload)
        got = link.recv(5.0)
        assert len(got) == 1, f"{len(got)} answers to {payload[:40].hex()}"
        reply = decode(got[0])  # well-formed, or this raises
        kinds.add(errors.name(reply["code"]) if reply["t"] == "error" else reply["t"])
    assert {"BAD_PAYLOAD", "BAD_FIELD", "OUT_OF_RANGE"} <= kinds and "INTERNAL" not in kinds, kinds
    oversize = b"\x81\xa1x\xc6" + struct.pack(">I", caps["max_frame"]) + bytes(caps["max_frame"])
    link.send(oversize)
    reply = decode(link.recv(5.0)[0])
    assert (reply["t"], reply["code"]) == ("error", errors.TOO_LONG)
    assert client.hello()["device"] == "fz" and not client.unmatched  # nothing answered twice
    link.close()
