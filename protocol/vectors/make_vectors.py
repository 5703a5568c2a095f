"""Regenerate v1.json, the golden vectors, independently of pnn_protocol (CPython only).

Payloads come from the msgpack C package (keys sorted), CRC from zlib, COBS from the byte-at-a-time
reference algorithm below, so the vectors check pnn_protocol rather than repeat it.
Run: python protocol/vectors/make_vectors.py
"""

import json
import struct
import zlib
from pathlib import Path

import msgpack

HERE = Path(__file__).parent


def cobs_reference(data: bytes) -> bytes:
    """Cheshire & Baker's encoder, one byte at a time."""
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(b)
        code += 1
        if code == 0xFF:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    if code == 1 and data and len(data) % 254 == 0 and 0 not in data[-254:]:
        out.pop()  # a trailing empty block after a full 0xFF block is not written (SPEC section 1)
    return bytes(out)


def sort_keys(obj):
    if isinstance(obj, dict):
        return {k: sort_keys(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [sort_keys(x) for x in obj]
    return obj


def to_json(obj):
    if isinstance(obj, bytes | bytearray):
        return {"bin": bytes(obj).hex()}
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(x) for x in obj]
    return obj


def frame_hex(payload: bytes) -> str:
    return (b"\x00" + cobs_reference(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00").hex()


def codes(values) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


HELLO = {
    "v": 1,
    "t": "hello",
    "id": 1,
    "device": "sim-0",
    "fw": "0.1.0",
    "proto": 1,
    "board": "sim",
    "caps": {
        "dac_bits": 8,
        "adc_bits": 12,
        "max_drive": 512,
        "max_batch": 16,
        "max_out": 512,
        "max_codes": 8600,
        "min_rate": 1000,
        "max_rate": 50000,
        "max_oversample": 64,
        "max_settle": 65535,
        "max_frame": 17408,
        "cache": 4,
        "rest_code": 0,
        "hal": {"dac": 25, "adc": 34},
    },
}
RUN = {
    "v": 1,
    "t": "run",
    "id": 2,
    "drive": codes([0, 255, 128, 3, 0, 1, 2, 3]),
    "batch": 2,
    "n_drive": 4,
    "rate": 20000,
    "oversample": 1,
    "settle": 8,
    "n_out": 2,
}
# Later additions within v1 (unknown keys are ignored by older peers).
RUN8 = dict(RUN, id=3, drive_width=1, drive=bytes([0, 255, 128, 3, 0, 1, 2, 3]))
HELLO_BOOT = dict(
    HELLO,
    boot=0x9E3779B9,
    caps=dict(
        HELLO["caps"],
        max_codes=8603,
        drive_widths=[1, 2],
        cache=8,
        cache_bytes=33032,
        max_ping=256,
        hal={"dac": "sim 8-bit 0..3.26 V", "seed": 0},
    ),
)

MESSAGES = [
    ("hello request", {"v": 1, "t": "hello", "id": 1}),
    ("hello", HELLO),
    ("run", RUN),
    (
        "result",
        {
            "v": 1,
            "t": "result",
            "id": 2,
            "resp": codes([4095, 0, 2048, 1]),
            "batch": 2,
            "n_out": 2,
            "period_us": 50,
            "overruns": 0,
        },
    ),
    (
        "run 300 codes (bin16, long COBS blocks)",
        {
            "v": 1,
            "t": "run",
            "id": 70000,
            "drive": codes([0x0101 + i for i in range(300)]),
            "batch": 1,
            "n_drive": 300,
            "rate": 10000,
            "oversample": 4,
            "settle": 0,
            "n_out": 10,
        },
    ),
    ("run, uint8 drive codes (drive_width 1)", RUN8),
    ("hello with boot id and drive widths", HELLO_BOOT),
    ("pong with boot id", {"v": 1, "t": "pong", "id": 11, "boot": 7, "data": b"\x01"}),
    ("ping", {"v": 1, "t": "ping", "id": 4294967295, "data": b"\x00\x03\xff"}),
    ("pong", {"v": 1, "t": "pong", "id": 4294967295, "data": b"\x00\x03\xff"}),
    ("config read", {"v": 1, "t": "config", "id": 5}),
    ("config set", {"v": 1, "t": "config", "id": 6, "set": {"rest_code": 128}}),
    ("config", {"v": 1, "t": "config", "id": 6, "config": {"rest_code": 128}}),
    ("reset", {"v": 1, "t": "reset", "id": 7}),
    ("repl", {"v": 1, "t": "repl", "id": 8}),
    ("error with id", {"v": 1, "t": "error", "id": 9, "code": 8, "msg": "rate=5 outside [1000, 50000]"}),
    ("error without id", {"v": 1, "t": "error", "id": None, "code": 1, "msg": "bad CRC"}),
    (
        "subset: ints, negatives, bool, float, nesting",
        {
            "v": 1,
            "t": "ping",
            "id": 10,
            "x": [
                0,
                127,
                128,
                255,
                256,
                65535,
                65536,
                2**32 - 1,
                2**32,
                2**64 - 1,
                -1,
                -32,
                -33,
                -128,
                -129,
                -32768,
                -32769,
                -(2**31),
                -(2**31) - 1,
                -(2**63),
                True,
                False,
                None,
                0.5,
                "é" * 20,
                [[[1]]],
                {"b": 1, "a": 2},
            ],
        },
    ),
    # the top map is level 0, a value inside a container of level k is at level k+1; 8 is the deepest
    ("nesting: a value at level 8", {"v": 1, "t": "ping", "id": 12, "x": [[[[[[[1]]]]]]]}),
    ("nesting: an empty array at level 8", {"v": 1, "t": "ping", "id": 13, "x": [[[[[[[[]]]]]]]]}),
]

# Accepted although not canonical (SPEC section 2): wider ints, str8, map16, keys out of order.
NONCANONICAL = [
    (
        "wide ints, str8, map16, unsorted keys",
        bytes.fromhex("de0003") + b"\xa1t\xd9\x04ping" + b"\xa1v\xcc\x01" + b"\xa2id\xce\x00\x00\x00\x03",
        {"v": 1, "t": "ping", "id": 3},
    ),
    (
        "bin32 for 2 bytes",
        b"\x84\xa4data\xc6\x00\x00\x00\x02\x01\x02\xa2id\x04\xa1t\xa4ping\xa1v\x01",
        {"v": 1, "t": "ping", "id": 4, "data": b"\x01\x02"},
    ),
]


def _req(t, rid, **fields):
    return msgpack.packb(sort_keys({"v": 1, "t": t, "id": rid, **fields}), use_bin_type=True)


def _run(rid, **fields):
    base = {"drive": codes([1, 2, 3, 4]), "batch": 1, "n_drive": 4, "rate": 20000, "n_out": 2}
    base.update(fields)
    return _req("run", rid, **{k: v for k, v in base.items() if v != "-"})


# How the v1 firmware (board file firmware/boards/sim.json) answers these requests: the response type,
# or the ERROR's code name. Checked against the firmware itself by tests/test_firmware_spec.py.
DEVICE = [
    (
        "RUN: fields checked one by one (batch=0 before n_drive='x')",
        _run(20, batch=0, n_drive="x"),
        "OUT_OF_RANGE",
    ),
    ("RUN: oversample nil counts as absent", _run(21, oversample=None, settle=None), "result"),
    ("RUN: required field nil", _run(22, rate=None), "BAD_FIELD"),
    ("RUN: uint8 drive", _run(23, drive_width=1, drive=bytes([1, 2, 3, 4])), "result"),
    ("RUN: uint8 drive of uint16 length", _run(24, drive_width=1), "BAD_FIELD"),
    ("RUN: drive_width 3", _run(25, drive_width=3), "OUT_OF_RANGE"),
    ("RUN: drive code above the 8-bit DAC", _run(26, drive=codes([1, 2, 256, 4])), "OUT_OF_RANGE"),
    ("PING: data nil counts as absent", _req("ping", 30, data=None), "pong"),
    ("PING: data not bin", _req("ping", 31, data="ab"), "BAD_FIELD"),
    ("CONFIG: set nil only reads", _req("config", 40, set=None), "config"),
    (
        "CONFIG: an unknown key wins over a bad value",
        _req("config", 41, set={"rest_code": 999, "zz": 1}),
        "BAD_FIELD",
    ),
    ("CONFIG: rest_code not an int", _req("config", 42, set={"rest_code": "1"}), "BAD_FIELD"),
    ("CONFIG: rest_code above the DAC", _req("config", 43, set={"rest_code": 256}), "OUT_OF_RANGE"),
    ("RESET: hard must be a bool", _req("reset", 50, hard=1), "BAD_FIELD"),
    ("RESET: hard false is soft", _req("reset", 51, hard=False), "reset"),
    ("RESET: hard nil is soft", _req("reset", 52, hard=None), "reset"),
    ("RESET: hard true on the simulator", _req("reset", 53, hard=True), "UNSUPPORTED"),
    ("nesting: a value at level 9", _req("ping", 60, x=[[[[[[[[1]]]]]]]]), "BAD_PAYLOAD"),
    ("noncanonical encodings are accepted", NONCANONICAL[0][1], "pong"),
    ("budget: 65 container entries", _req("ping", 61, x=list(range(61))), "BAD_PAYLOAD"),
    ("budget: 64 container entries", _req("ping", 62, x=list(range(60))), "pong"),
]

# (name, frame bytes, expected decoder events). The good frame is appended so each case also shows resync.
GOOD = bytes.fromhex(frame_hex(msgpack.packb({"id": 3, "t": "ping", "v": 1})))


def bad_frames():
    good_body = GOOD[1:-1]
    flipped = bytearray(good_body)
    flipped[3] ^= 0x01
    return [
        ("bad CRC", b"\x00" + bytes(flipped) + b"\x00" + GOOD, ["BAD_CRC", "ok"]),
        ("truncated (COBS block cut)", b"\x00" + good_body[:6] + b"\x00" + GOOD, ["BAD_FRAME", "ok"]),
        ("too short for a CRC", b"\x00\x03\x01\x02\x00" + GOOD, ["BAD_FRAME", "ok"]),
        ("garbage between frames", GOOD + b"hello" + GOOD, ["ok", "BAD_FRAME", "ok"]),
        ("empty frames ignored", b"\x00\x00\x00" + GOOD + b"\x00", ["ok"]),
        ("oversize (max_frame 64)", b"\x00" + b"\x05" * 200 + b"\x00" + GOOD, ["TOO_LONG", "ok"]),
    ]


BAD_PAYLOADS = [
    ("not a map", msgpack.packb([1, 2]), "BAD_PAYLOAD"),
    ("truncated msgpack", msgpack.packb({"id": 1, "t": "ping", "v": 1})[:-2], "BAD_PAYLOAD"),
    ("trailing bytes", msgpack.packb({"id": 1, "t": "ping", "v": 1}) + b"\xc0", "BAD_PAYLOAD"),
    (
        "ext type",
        msgpack.packb({"id": 1, "t": "ping", "v": 1, "x": msgpack.ExtType(1, b"ab")}),
        "BAD_PAYLOAD",
    ),
    ("map of 2**32-1 items claimed", b"\xdf\xff\xff\xff\xff\xa1v\x01", "BAD_PAYLOAD"),
    ("wrong version", msgpack.packb({"id": 1, "t": "ping", "v": 2}), "BAD_VERSION"),
    ("unknown type", msgpack.packb({"id": 1, "t": "launch", "v": 1}), "UNKNOWN_TYPE"),
    ("no id", msgpack.packb({"t": "ping", "v": 1}), "BAD_FIELD"),
    (
        "nesting: a value at level 9",
        msgpack.packb({"id": 1, "t": "ping", "v": 1, "x": [[[[[[[[1]]]]]]]]}),
        "BAD_PAYLOAD",
    ),
]


def main() -> None:
    valid = []
    for name, msg in MESSAGES:
        payload = msgpack.packb(sort_keys(msg), use_bin_type=True)
        valid.append(
            {"name": name, "message": to_json(msg), "payload_hex": payload.hex(), "hex": frame_hex(payload)}
        )
    out = {
        "version": 1,
        "max_frame_for_frames": 64,
        "valid": valid,
        "frames": [{"name": n, "hex": f.hex(), "events": ev} for n, f, ev in bad_frames()],
        "payloads": [{"name": n, "payload_hex": p.hex(), "error": e} for n, p, e in BAD_PAYLOADS],
        "noncanonical": [
            {"name": n, "payload_hex": p.hex(), "message": to_json(m)} for n, p, m in NONCANONICAL
        ],
        "device": [{"name": n, "payload_hex": p.hex(), "answer": a} for n, p, a in DEVICE],
    }
    (HERE / "v1.json").write_text(json.dumps(out, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
