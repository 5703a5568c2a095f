"""Check pnn_protocol against the golden vectors in v1.json; runs unchanged on CPython and MicroPython.

Usage: python|micropython protocol/vectors/check_vectors.py
Prints one line per failure and "vectors ok N" at the end; exit status 1 on any failure.
The "device" section (how the firmware answers requests) is checked against the firmware itself by
tests/test_firmware_spec.py.
"""

# ruff: noqa: UP031
# (runs on MicroPython too, hence %-formatting)

import json
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, HERE + "/..")

from pnn_protocol import FrameDecoder, ProtocolError, errors, frame, frame_into, messages, packb, unpackb  # noqa: E402
from pnn_protocol.codec import DecodeError  # noqa: E402


def from_json(x):
    if isinstance(x, dict):
        if len(x) == 1 and "bin" in x:
            return bytes.fromhex(x["bin"])
        return {k: from_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_json(v) for v in x]
    return x


def to_json(x):
    if isinstance(x, (bytes, bytearray, memoryview)):
        return {"bin": bytes(x).hex()}
    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [to_json(v) for v in x]
    return x


def events(dec, data):
    out = []
    for ev in dec.feed(data):
        out.append(errors.name(ev) if isinstance(ev, int) else bytes(ev))
    return out


def main():
    with open(HERE + "/v1.json") as f:
        vec = json.load(f)
    fails = []
    n = 0
    for v in vec["valid"]:
        n += 1
        name = v["name"]
        wire = bytes.fromhex(v["hex"])
        payload = bytes.fromhex(v["payload_hex"])
        msg = from_json(v["message"])
        if packb(msg) != payload:
            fails.append("%s: packb differs: %s" % (name, packb(msg).hex()))
        if to_json(unpackb(payload)) != v["message"]:
            fails.append("%s: unpackb differs: %r" % (name, unpackb(payload)))
        if frame(payload) != wire:
            fails.append("%s: frame differs: %s" % (name, frame(payload).hex()))
        # the allocation-free path the firmware uses, from an offset in a bigger buffer
        src = bytearray(3) + bytearray(payload) + bytearray(4)
        out = bytearray(len(wire) + 8)
        k = frame_into(src, len(payload), out, 3)
        if bytes(out[:k]) != wire:
            fails.append("%s: frame_into differs: %s" % (name, bytes(out[:k]).hex()))
        got = events(FrameDecoder(len(wire)), wire)
        if got != [payload]:
            fails.append("%s: decoder gave %r" % (name, got))
        # byte-at-a-time feeding must give the same
        dec = FrameDecoder(len(wire))
        got = []
        for i in range(len(wire)):
            got += events(dec, wire[i : i + 1])
        if got != [payload]:
            fails.append("%s: byte-wise decoder gave %r" % (name, got))
    for v in vec["frames"]:
        n += 1
        got = events(FrameDecoder(vec["max_frame_for_frames"]), bytes.fromhex(v["hex"]))
        got = ["ok" if isinstance(e, bytes) and unpackb(e)["t"] == "ping" else e for e in got]
        if got != v["events"]:
            fails.append("%s: events %r, want %r" % (v["name"], got, v["events"]))
    for v in vec["payloads"]:
        n += 1
        code = None
        try:
            messages.check_request(unpackb(bytes.fromhex(v["payload_hex"])))
        except DecodeError:
            code = errors.BAD_PAYLOAD
        except ProtocolError as e:
            code = e.code
        if code is None or errors.name(code) != v["error"]:
            fails.append("%s: got %r, want %s" % (v["name"], code, v["error"]))
    for v in vec["noncanonical"]:  # accepted, and decoded as the canonical message
        n += 1
        payload = bytes.fromhex(v["payload_hex"])
        if to_json(unpackb(payload)) != v["message"] or packb(unpackb(payload)) == payload:
            fails.append("%s: decoded as %r" % (v["name"], unpackb(payload)))
    for f in fails:
        print("FAIL", f)
    print("vectors ok %d" % (n - len(fails)) if not fails else "vectors failed %d of %d" % (len(fails), n))
    return 1 if fails else 0


sys.exit(main())
