"""The device loop under real MicroPython answers as SPEC.md says where an outside client found it silent:
the golden "device" vectors, the boot id, uint8 drive codes, HELLO's rest_code after CONFIG, and where the
RESULT cache ring restarts after RESET."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "protocol" / "vectors" / "v1.json"

PRELUDE = f"""
import sys, json, struct, gc
sys.path.insert(0, {str(ROOT / "firmware")!r})
sys.path.insert(0, {str(ROOT / "protocol")!r})
from pnn_fw import config
from pnn_fw.hal import make_hal
from pnn_fw.loop import DeviceLoop
from pnn_protocol import errors, messages, packb, unpackb

def board(**kw):
    b = config.load_board({str(ROOT / "firmware" / "boards" / "sim.json")!r})
    b.update(kw)
    return b

def device(**kw):
    b = board(**kw)
    gc.collect()  # the last board's buffers are garbage now
    return DeviceLoop(b, make_hal(b), "sim-0")

def ask(loop, payload):
    buf, s, n = loop.handle(payload)
    return unpackb(bytes(buf[s : s + n]))

def answer(m):
    return errors.name(m["code"]) if m["t"] == "error" else m["t"]

def emit(obj):
    print(json.dumps(obj))
"""


def mp(body: str) -> dict:
    """Run PRELUDE + body under MicroPython and return the JSON it printed last (a 1 MiB heap: these
    scripts build several boards in one process; the 256 KiB discipline is tested elsewhere)."""
    exe = shutil.which("micropython")
    assert exe, "the micropython binary is required"
    r = subprocess.run([exe, "-X", "heapsize=1m", "-c", PRELUDE + textwrap.dedent(body)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_device_vectors():
    cases = json.loads(VECTORS.read_text())["device"]
    assert len(cases) >= 15
    got = mp(
        f"""
        cases = {[(c["name"], c["payload_hex"]) for c in cases]!r}
        out = {{}}
        for name, hexed in cases:
            loop = None
            loop = device()  # a fresh board for each: no state carried between cases
            out[name] = answer(ask(loop, bytes.fromhex(hexed)))
        emit(out)
        """
    )
    assert got == {c["name"]: c["answer"] for c in cases}


def test_boot_id_in_hello_and_pong_and_fresh_per_boot():
    """Two boots (processes) draw different ids; within one boot HELLO and PONG agree, across RESET too."""
    body = """
        loop = device()
        h = ask(loop, packb(messages.hello_request(1)))
        p = ask(loop, packb(messages.ping(2)))
        ask(loop, packb(messages.reset(3)))
        p2 = ask(loop, packb(messages.ping(4)))
        emit([h["boot"], p["boot"], p2["boot"]])
        """
    boots = [mp(body) for _ in range(3)]
    for h, p, p2 in boots:
        assert isinstance(h, int) and 0 <= h < 2**32 and h == p == p2
    assert len({b[0] for b in boots}) == 3, boots


def test_boot_counter_gives_every_boot_a_new_id_without_any_randomness(tmp_path):
    """The emulated RP2040 has constant os.urandom and unique_id: the boot counter file alone must make
    each boot's id new (with the entropy pinned to a constant here, as there)."""
    counter = tmp_path / "boot_count"
    body = f"""
        from pnn_fw import loop as L
        L._entropy = lambda: b"****" + bytes(8)
        ids = [L.boot_id({str(counter)!r}) for _ in range(4)]
        with open({str(counter)!r}) as f:
            count = f.read()
        emit({{"ids": ids, "count": count, "none": [L.boot_id(), L.boot_id()]}})
        """
    out = mp(body)
    assert len(set(out["ids"])) == 4 and all(0 <= i < 2**32 for i in out["ids"]), out
    assert out["count"] == "4"
    assert out["none"][0] == out["none"][1]  # no counter, no randomness: the same id (what the counter fixes)
    counter.write_text("not a number")  # a damaged counter file counts from 0 again, never stops the boot
    assert isinstance(mp(body)["ids"][0], int)


def test_uint8_drive_plays_the_same_codes():
    """The same codes as uint8 and uint16 give the same RESULT from boards with the same seed."""
    got = mp(
        """
        codes = [(i * 37) % 256 for i in range(2 * 64)]
        out = []
        for width in (2, 1):
            loop = device(seed=5)
            drive = bytes(codes) if width == 1 else struct.pack("<%dH" % len(codes), *codes)
            m = ask(loop, packb(messages.run(7, drive, 2, 64, 20000, 2, 3, 16, width)))
            out.append([m["t"], bytes(m["resp"]).hex()])
        h = ask(device(), packb(messages.hello_request(1)))
        out.append(h["caps"]["drive_widths"])
        emit(out)
        """
    )
    (t2, r2), (t1, r1), widths = got
    assert t2 == t1 == "result" and r1 == r2 and len(r1) == 2 * 2 * 2 * 16
    assert widths == [1, 2]


def test_hello_rest_code_is_the_default_after_config():
    got = mp(
        """
        loop = device(rest_code=10)
        c = ask(loop, packb(messages.config_request(1, {"rest_code": 99})))
        h = ask(loop, packb(messages.hello_request(2)))
        ask(loop, packb(messages.reset(3)))
        c2 = ask(loop, packb(messages.config_request(4)))
        emit([c["config"]["rest_code"], h["caps"]["rest_code"], c2["config"]["rest_code"]])
        """
    )
    assert got == [99, 10, 10]  # CONFIG changes it, HELLO keeps saying the default, RESET restores it


def test_cache_ring_starts_again_at_its_beginning_after_reset():
    """A pool that holds exactly k equal RESULTs from its start: after a small RESULT and a RESET, k more
    are all kept (a ring left where it stood would wrap early and evict the first of them)."""
    got = mp(
        """
        def run(loop, rid, batch, n):
            return ask(loop, packb(messages.run(rid, bytes(2 * batch * n), batch, n, 50000, 1, 0, n)))

        probe = device()
        s = len(packb(run(probe, 250, 6, 512))) + 4  # what one big RESULT (id of the same width) takes
        k = 3
        loop = device(cache_bytes=k * s)
        run(loop, 100, 1, 4)  # a small RESULT moves the write position
        ask(loop, packb(messages.reset(101)))
        for rid in range(200, 200 + k):
            run(loop, rid, 6, 512)
        kept = [rid for rid in range(200, 200 + k) if rid in [e[0] for e in loop._entries]]
        before = loop.counts["runs"]
        again = [run(loop, rid, 6, 512)["id"] for rid in range(200, 200 + k)]
        emit([kept, loop.counts["runs"] - before, again])
        """
    )
    kept, reruns, again = got
    assert kept == [200, 201, 202] and reruns == 0 and again == kept
