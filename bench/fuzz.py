"""Fuzzing both decoders: the host's receive path and the firmware under real MicroPython.

Run: python bench/fuzz.py [--host-frames 1000000] [--firmware-frames 10000] [--seed 0]
Prints a table and writes bench/results/fuzz.json.

(a) Host: mutated response frames (bit flips, random bytes, inserts, deletes, cuts, repeats, splices)
    into one long-lived FrameDecoder in random chunk sizes, each followed by an intact sentinel frame;
    every payload that comes out goes through the host's message decoder (pnn.link.wire). Must
    hold: no exception but ProtocolError ("crashes" 0); no damaged frame accepted as a good one
    ("undetected" 0: every accepted payload is one the corpus holds); every sentinel arrives intact
    ("sentinels_lost" 0). Mutated bare payloads (the MQTT path, no CRC) must decode or be refused.
(b) Firmware: malformed frames over a pty to `micropython -X heapsize=256k firmware/sim/run.py`:
    mutated framing (bad CRC, broken COBS, over-long), mutated msgpack, and hostile requests (wrong
    types, values out of range, deep nesting, huge containers). A mirror of the firmware's own frame
    decoder says how many answers are due and which framing ERROR each bad frame must get; payloads
    the host's copy of the codec or the envelope check refuses must get that same ERROR. Must hold:
    process alive, one well-formed answer per frame, no wrong answer, no hang, and afterwards HELLO,
    the largest RUN and the largest PING still served; resident memory is reported before and after.
REPL requests (which end serving by design) are never sent.

The tests (tests/test_fuzz_*.py) run the same machinery with small counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
import tty
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack

from pnn.link.wire import decode as host_decode
from pnn_protocol import FrameDecoder, ProtocolError, errors, frame, messages, packb
from pnn_protocol.codec import DecodeError, unpackb

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "fuzz.json"
RUN_PY = ROOT / "firmware" / "sim" / "run.py"
FRAMING = (errors.BAD_CRC, errors.BAD_FRAME, errors.TOO_LONG)


# -- mutations -------------------------------------------------------------------------------------
INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0xC0, 0xC1, 0xC4, 0xC6, 0xCB, 0xCF, 0xD3, 0xD9, 0xDB, 0xDD, 0xDF, 0xE0)


def mutate(data: bytes, rng: random.Random, other: bytes = b"") -> bytes:
    """`data` changed by 1-3 random mutations (any byte may become 0x00, i.e. a delimiter)."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        n = len(buf)
        op = rng.randrange(8)
        i = rng.randrange(n + 1)
        if op == 0 and n:  # flip a bit
            buf[i % n] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # a random or an interesting byte
            buf[i % n] = rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
        elif op == 2:  # insert bytes
            buf[i:i] = rng.randbytes(rng.randrange(1, 9))
        elif op == 3 and n:  # delete a slice
            del buf[i : i + rng.randrange(1, 17)]
        elif op == 4:  # cut short
            del buf[i:]
        elif op == 5 and n:  # repeat a slice
            j = rng.randrange(n)
            buf[j:j] = buf[j : j + rng.randrange(1, 33)]
        elif op == 6 and other:  # head of this one, tail of another
            buf = buf[:i] + other[rng.randrange(len(other) + 1) :]
        else:  # a big-endian length field made huge
            buf[i:i] = struct.pack(">I", rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0x10000, len(buf) + 1)))
    return bytes(buf)


# -- (a) host ---------------------------------------------------------------------------------------
def response_corpus(rng: random.Random) -> list[bytes]:
    """Payloads a board sends: HELLO, RESULTs of several sizes, PONG, CONFIG, acks, ERRORs."""
    caps = {"dac_bits": 8, "adc_bits": 12, "max_drive": 512, "max_batch": 16, "max_out": 512, "max_codes": 8560,
            "min_rate": 1000, "max_rate": 50000, "max_frame": 17408, "cache": 8, "cache_bytes": 34000,
            "max_ping": 256, "rest_code": 0, "hal": {"dac": "sim", "seed": 3}}  # fmt: skip
    out = [messages.hello(1, "sim-0", "0.1.0", "sim", caps), messages.pong(5), messages.pong(6, rng.randbytes(40)),
           messages.config(7, {"rest_code": 3}), messages.ack(messages.RESET, 8),
           messages.error(None, errors.BAD_CRC, "frame CRC32 mismatch"),
           messages.error(9, errors.OUT_OF_RANGE, "rate=1000000 outside [1000, 50000]")]  # fmt: skip
    for batch, n_out in ((1, 1), (1, 8), (4, 16), (16, 64), (8, 200)):
        resp = rng.randbytes(2 * batch * n_out)
        out.append(messages.result(rng.randrange(2**32), resp, batch, n_out, 50, 0))
    return [packb(m) for m in out]


def check_message(msg: dict[str, Any]) -> None:
    """What the Device core relies on in an accepted message; AssertionError if it does not hold."""
    rid = msg.get("id")
    assert rid is None or (isinstance(rid, int) and 0 <= rid < 2**32), rid
    if msg["t"] == messages.RESULT:
        assert len(msg["resp"]) == 2 * msg["batch"] * msg["n_out"]


def fuzz_host(n_frames: int, seed: int = 0) -> dict[str, Any]:
    """Feed `n_frames` mutated frames (and as many mutated bare payloads) through the host decoders."""
    rng = random.Random(seed)
    corpus = response_corpus(rng)
    known = set(corpus)
    frames = [frame(p) for p in corpus]
    sentinel_payload = packb(messages.pong(424242))
    sentinel = frame(sentinel_payload)
    decoder = FrameDecoder(1 << 20)  # the host's bound (pnn.link.serial.HOST_MAX_FRAME)
    c: Counter[str] = Counter()
    failures: list[str] = []
    start = time.perf_counter()
    for k in range(n_frames):
        i = rng.randrange(len(frames))
        wire = mutate(frames[i], rng, frames[rng.randrange(len(frames))]) + sentinel
        got_sentinel = False
        pos = 0
        while pos < len(wire):  # arbitrary chunking: frames straddle reads, as on a real port
            step = rng.choice((1, 7, 64, 4096))
            for res in decoder.feed(wire[pos : pos + step]):
                if isinstance(res, int):
                    c["framing_errors"] += 1
                    continue
                payload = bytes(res)
                if payload == sentinel_payload:
                    got_sentinel = True
                    continue
                if payload not in known:
                    c["undetected"] += 1
                c["accepted"] += 1
                _decode_checked(payload, c, failures)
            pos += step
        c["sentinels_lost"] += not got_sentinel
        _decode_checked(mutate(corpus[i], rng, corpus[rng.randrange(len(corpus))]), c, failures, "payload_")
        c["frames"] += 1
        if k % 100_000 == 99_999:
            print(f"  host: {k + 1:,} frames, {c['crashes']} crashes", file=sys.stderr)
    seconds = time.perf_counter() - start
    return {"frames": c["frames"], "payloads": c["frames"], "framing_errors": c["framing_errors"],
            "accepted_frames": c["accepted"], "undetected": c["undetected"], "sentinels_lost": c["sentinels_lost"],
            "payloads_refused": c["payload_refused"], "payloads_accepted": c["payload_ok"],
            "crashes": c["crashes"] + c["payload_crashes"], "failures": failures[:10], "seconds": seconds,
            "frames_per_s": n_frames / seconds}  # fmt: skip


def _decode_checked(payload: bytes, c: Counter, failures: list[str], prefix: str = "") -> None:
    try:
        check_message(host_decode(payload))
        c[prefix + "ok"] += 1
    except ProtocolError:
        c[prefix + "refused"] += 1
    except Exception as e:  # noqa: BLE001 - the point: anything else is a crash, recorded with its input
        c[prefix + "crashes"] += 1
        failures.append(f"{type(e).__name__}: {e} <- {payload[:64].hex()}")


# -- (b) firmware ------------------------------------------------------------------------------------
def _codes(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


class RequestMaker:
    """Valid requests (with fresh ids) and hostile ones, as payload bytes, within one board's caps."""

    def __init__(self, caps: dict[str, Any], rng: random.Random) -> None:
        self.caps, self.rng, self.next_id = caps, rng, 1

    def rid(self) -> int:
        self.next_id += 1
        return self.next_id

    def valid(self) -> dict[str, Any]:
        r, caps = self.rng, self.caps
        kind = r.randrange(6)
        if kind == 0:
            return messages.hello_request(self.rid())
        if kind == 1:
            return messages.ping(self.rid(), r.randbytes(r.randrange(caps["max_ping"] + 1)))
        if kind == 2:
            return messages.config_request(self.rid(), {"rest_code": r.randrange(1 << caps["dac_bits"])})
        if kind == 3:
            return messages.reset(self.rid())
        batch, n_drive = r.randrange(1, 5), r.choice((8, 16, 32))
        drive = _codes([r.randrange(1 << caps["dac_bits"]) for _ in range(batch * n_drive)])
        return messages.run(self.rid(), drive, batch, n_drive, 20000, n_out=r.choice((1, 4, 8)))

    def hostile(self) -> bytes:
        """A request broken on purpose: a field of the wrong type or size, an impossible container, ..."""
        r, caps = self.rng, self.caps
        m = self.valid()
        kind = r.randrange(7)
        if kind == 0:  # one field of the wrong type or out of range
            key = r.choice(sorted(m) + ["set", "data", "hard"])
            m[key] = r.choice([None, True, -1, 0, 2**32, 2**64 - 1, -(2**63), 1.5, "x", b"\x00", [], {}, "A" * 300,
                               caps["max_batch"] + 1, caps["max_drive"] + 1, {"rest_code": 1 << 16}, {"bogus": 1}])  # fmt: skip
        elif kind == 1:  # unknown type or version
            m[r.choice(("t", "v"))] = r.choice(("repl2", "", "RUN", "x" * 100, 2, 0, None))
        elif kind == 2:  # nesting past the subset's limit
            deep: Any = 1
            for _ in range(r.randrange(8, 40)):
                deep = [deep]
            m["x"] = deep
        elif kind == 3:  # a container as big as the frame allows, under a key the board ignores
            room = caps["max_frame"] // 2
            m["x"] = r.choice(
                [[None] * room, {f"k{i}": 0 for i in range(room // 6)}, "y" * room, b"z" * room]
            )
        elif kind == 4:  # a RUN whose result could not fit, or whose drive codes exceed the DAC
            batch = caps["max_batch"]
            n = caps["max_codes"] // batch
            m = messages.run(self.rid(), _codes([1 << caps["dac_bits"]] * (2 * batch)), batch, 2, 20000)
            if r.random() < 0.5:
                m.update(drive=_codes([0] * (batch * n)), n_drive=n, n_out=n)
        elif kind == 5:  # not a map at all
            return _packb(r.choice([[1, 2], 7, "run", None, b"\x01"]))
        else:  # raw msgpack the subset refuses: ext, never-used, oversize length claims, dup/non-str keys
            return r.choice([b"\xc1", b"\xd4\x01\x02", b"\x81\xa1v\xc1", b"\xdf\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff",
                             b"\x82\xa1v\x01\xa1v\x01", b"\x81\x01\x01", b"\x81\xa2\xff\xfe\x01", _packb(m) + b"\x00"])  # fmt: skip
        return _packb(m)


def _packb(obj: Any) -> bytes:
    """msgpack-python's packing: it goes past the subset's limits (nesting) where pnn_protocol refuses."""
    return msgpack.packb(obj, use_bin_type=True)


def malformed_stream(maker: RequestMaker, rng: random.Random) -> bytes:
    """One malformed frame (or a few: a 0x00 inside splits it) in wire bytes, never a REPL request."""
    kind = rng.random()
    if kind < 0.35:  # mutated msgpack, intact framing: the decoder and validators meet it
        return frame(mutate(packb(maker.valid()), rng))
    if kind < 0.6:
        return frame(maker.hostile())
    if kind < 0.62:  # longer than max_frame: dropped as it streams, one TOO_LONG
        return b"\x00" + _noise(rng, maker.caps["max_frame"] + rng.randrange(1, 300)) + b"\x00"
    if kind < 0.64:  # line noise with no delimiter in it, ended by the next frame's leading 0x00
        return _noise(rng, rng.randrange(1, 64))
    good = frame(packb(maker.valid()))
    return mutate(good, rng, frame(packb(maker.valid())))  # mutated framing


def _noise(rng: random.Random, n: int) -> bytes:
    """n random bytes without a 0x00 (so they stay one frame)."""
    return rng.randbytes(n).replace(b"\x00", b"\x01")


def _holds_repl(wire: bytes) -> bool:
    """Whether `wire` carries a REPL request (never sent: it ends serving, by design)."""
    for res in FrameDecoder(len(wire) + 1).feed(b"\x00" + wire + b"\x00"):
        if not isinstance(res, int):
            with contextlib.suppress(DecodeError):
                m = unpackb(bytes(res))
                if isinstance(m, dict) and m.get("t") == messages.REPL:
                    return True
    return False


def expect(wire: bytes, mirror: FrameDecoder) -> list[int | None]:
    """The answers the firmware owes for `wire`, one per frame: the ERROR code it must send, or None
    where the answer depends on more than framing, codec and envelope (validated by its shape only).

    `mirror` is a FrameDecoder with the firmware's max_frame that has seen every byte sent before.
    """
    due: list[int | None] = []
    for res in mirror.feed(wire):
        if isinstance(res, int):
            due.append(res)
            continue
        try:
            messages.check_request(unpackb(bytes(res)))
            due.append(None)
        except DecodeError:
            due.append(errors.BAD_PAYLOAD)
        except ProtocolError as e:
            due.append(e.code)
    return due


class PtyPeer:
    """The host end of the board's pty: write frames, read answers (select, never blocking)."""

    def __init__(self, fd: int, max_frame: int) -> None:
        self.fd = fd
        self.decoder = FrameDecoder(max_frame + 16)
        os.set_blocking(fd, False)

    def exchange(self, wire: bytes, want: int, timeout: float) -> list[dict[str, Any] | int]:
        """Write `wire` while reading; return once `want` answers (messages, or int framing errors) came."""
        out: list[dict[str, Any] | int] = []
        view = memoryview(wire)
        deadline = time.monotonic() + timeout
        while len(out) < want or view:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, writable, _ = select.select([self.fd], [self.fd] if view else [], [], left)
            if writable:
                try:
                    view = view[os.write(self.fd, view[:4096]) :]
                except BlockingIOError:
                    pass
            if readable:
                for res in self.decoder.feed(os.read(self.fd, 65536)):
                    out.append(res if isinstance(res, int) else unpackb(bytes(res)))
        return out


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def fuzz_firmware(fd: int, proc: subprocess.Popen, n_frames: int, seed: int = 0, group: int = 8,
                  timeout: float = 15.0, verbose: bool = False) -> dict[str, Any]:  # fmt: skip
    """Send `n_frames` malformed frames to the firmware serving on the pty whose master is `fd`.

    Frames go `group` at a time (the firmware answers in order), so the pty is kept busy.
    """
    rng = random.Random(seed)
    peer = PtyPeer(fd, 1 << 20)
    hello = peer.exchange(frame(packb(messages.hello_request(1))), 1, timeout)
    assert hello and isinstance(hello[0], dict) and hello[0]["t"] == "hello", f"no HELLO answer: {hello}"
    caps = hello[0]["caps"]
    maker = RequestMaker(caps, rng)
    mirror = FrameDecoder(caps["max_frame"])  # the firmware's own decoder, fed the same bytes
    c: Counter[Any] = Counter()
    wrong: list[str] = []
    rss_before = rss_kib(proc.pid)
    start = time.perf_counter()
    sent = 0
    while sent < n_frames and proc.poll() is None:
        wire, due, before = b"", [], sent
        while len(due) < group and sent < n_frames:
            piece = malformed_stream(maker, rng)
            if _holds_repl(piece):
                c["repl_skipped"] += 1
                continue
            wire += piece
            due += expect(piece, mirror)
            sent += 1
        answers = peer.exchange(wire, len(due), timeout)
        c["due"] += len(due)
        c["answers"] += len(answers)
        for want, got in zip(due, answers, strict=False):
            _score(want, got, c, wrong)
        if len(answers) != len(due):
            c["hangs" if proc.poll() is None and len(answers) < len(due) else "miscounted"] += 1
            break
        if verbose and sent // 1000 > before // 1000:
            print(f"  firmware: {sent:,} frames", file=sys.stderr)
    seconds = time.perf_counter() - start
    alive = proc.poll() is None
    after = _still_serving(peer, mirror, caps, timeout) if alive else {}
    return {"frames": sent, "answers_due": c["due"], "answers": c["answers"],
            "errors_by_code": {errors.name(k): v for k, v in sorted(c.items(), key=str) if isinstance(k, int)},
            "internal_reasons": {k[9:]: v for k, v in c.items() if str(k).startswith("internal:")},
            "served": c["served"], "wrong_answers": c["wrong"], "wrong_examples": wrong[:10],
            "unreadable_answers": c["unreadable"], "miscounted": c["miscounted"], "hangs": c["hangs"],
            "crashes": 0 if alive else 1, "repl_skipped": c["repl_skipped"], "still_serving": after,
            "rss_kib_before": rss_before, "rss_kib_after": rss_kib(proc.pid) if alive else {},
            "seconds": seconds, "frames_per_s": sent / seconds if seconds else 0.0}  # fmt: skip


def _score(want: int | None, got: dict[str, Any] | int, c: Counter, wrong: list[str]) -> None:
    if isinstance(got, int):
        c["unreadable"] += 1  # the firmware sent a frame we could not read: never acceptable
        return
    try:
        messages.check_response(got)
    except ProtocolError as e:
        c["unreadable"] += 1
        wrong.append(f"malformed answer {got!r}: {e}")
        return
    if got["t"] == messages.ERROR:
        c[got["code"]] += 1
        if got["code"] == errors.INTERNAL:
            c["internal:" + got["msg"][:60]] += 1
    else:
        c["served"] += 1  # a mutation that left a valid request (or a RUN id replayed from the cache)
    if want is None:
        return
    if got["t"] != messages.ERROR or got["code"] != want or (want in FRAMING and got["id"] is not None):
        c["wrong"] += 1
        wrong.append(f"expected {errors.name(want)}, got {got!r}"[:300])


def _still_serving(
    peer: PtyPeer, mirror: FrameDecoder, caps: dict[str, Any], timeout: float
) -> dict[str, bool]:
    """HELLO, the largest RUN the board takes, and the largest PING, after the fuzz."""
    batch = caps["max_batch"]
    n = min(caps["max_drive"], caps["max_codes"] // batch)
    checks = {"hello": (messages.hello_request(900_001), "hello"),
              "largest_run": (messages.run(900_002, _codes([7] * (batch * n)), batch, n, 20000, n_out=n), "result"),
              "largest_ping": (messages.ping(900_003, bytes(range(256)) * (caps["max_ping"] // 256)), "pong")}  # fmt: skip
    result = {}
    for name, (msg, answer) in checks.items():
        wire = frame(packb(msg))
        answers = peer.exchange(wire, len(expect(wire, mirror)), timeout)  # (a line-noise tail answers first)
        result[name] = bool(answers) and isinstance(answers[-1], dict) and answers[-1].get("t") == answer
    return result


class Firmware:
    """`micropython -X heapsize=256k firmware/sim/run.py ARGS`, its messages going to a log file.

    Args:
        args: run.py's arguments. ready: the stderr text that says it serves ("serving", "online as").
    """

    def __init__(self, args: list[str], ready: str, heapsize: str = "256k") -> None:
        self.args, self.ready, self.heapsize = args, ready, heapsize
        self.log = Path(tempfile.mkstemp(prefix="pnn-fw-", suffix=".log")[1])
        self.proc: subprocess.Popen = self.start()

    def start(self, timeout: float = 15.0) -> subprocess.Popen:
        """Start it and wait until it serves."""
        offset = self.log.stat().st_size
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(["micropython", "-X", f"heapsize={self.heapsize}", str(RUN_PY), *self.args],
                                         stdout=f, stderr=f)  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.ready not in self.log.read_text(errors="replace")[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"firmware did not start: {self.log.read_text(errors='replace')[offset:]}")
            time.sleep(0.01)
        return self.proc

    def restart(self) -> None:
        """A power cycle: SIGKILL (no goodbye), then the same command again."""
        self.proc.kill()
        self.proc.wait()
        self.start()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def serial_firmware(seed: int = 0, board: str | None = None) -> tuple[Firmware, int]:
    """The firmware serving a fresh raw pty; returns it and the pty's master fd (the host's end)."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    extra = ["--board", board] if board else []
    fw = Firmware(["--serial", os.ttyname(slave), "--seed", str(seed), *extra], "serving")
    os.close(slave)  # the firmware holds its own; the host sees a hangup if it dies
    return fw, master


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host-frames", type=int, default=1_000_000)
    ap.add_argument("--firmware-frames", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    report = run(args.host_frames, args.firmware_frames, args.seed)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    h, f = report["host"], report["firmware"]
    if (
        h["crashes"]
        or h["undetected"]
        or h["sentinels_lost"]
        or f["crashes"]
        or f["hangs"]
        or f["wrong_answers"]
    ):
        sys.exit(1)


def run(host_frames: int, firmware_frames: int, seed: int = 0) -> dict[str, Any]:
    """Both fuzzers; the report bench/faults.py includes."""
    print(f"fuzzing the host decoder with {host_frames:,} mutated frames ...", file=sys.stderr)
    host = fuzz_host(host_frames, seed)
    print(f"fuzzing the firmware with {firmware_frames:,} malformed frames ...", file=sys.stderr)
    board, fd = serial_firmware(seed)
    try:
        fw = fuzz_firmware(fd, board.proc, firmware_frames, seed, verbose=True)
    finally:
        board.close()
        os.close(fd)
    return {"host": host, "firmware": fw, "machine": platform.platform(), "python": platform.python_version()}


def print_table(report: dict[str, Any]) -> None:
    h, f = report["host"], report["firmware"]
    rows = [("host frames (mutated)", f"{h['frames']:,}"), ("  framing errors caught", f"{h['framing_errors']:,}"),
            ("  damaged frames accepted", h["undetected"]), ("  sentinel frames lost", h["sentinels_lost"]),
            ("  bare payloads refused / accepted", f"{h['payloads_refused']:,} / {h['payloads_accepted']:,}"),
            ("  crashes", h["crashes"]), ("  frames/s", f"{h['frames_per_s']:,.0f}"),
            ("firmware frames (malformed)", f"{f['frames']:,}"), ("  answers", f"{f['answers']:,}"),
            ("  ERRORs by code", ", ".join(f"{k} {v}" for k, v in f["errors_by_code"].items())),
            ("  served (valid after mutation)", f["served"]), ("  wrong answers", f["wrong_answers"]),
            ("  hangs / crashes", f"{f['hangs']} / {f['crashes']}"),
            ("  still serving", ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in f["still_serving"].items())),
            ("  RSS KiB before -> after (peak)", f"{f['rss_kib_before'].get('VmRSS')} -> "
             f"{f['rss_kib_after'].get('VmRSS')} ({f['rss_kib_after'].get('VmHWM')})"),
            ("  frames/s", f"{f['frames_per_s']:,.0f}")]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
