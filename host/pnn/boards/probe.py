"""`python -m pnn.boards.probe URL`: say HELLO to one board and time one RUN.

    python -m pnn.boards.probe serial:///dev/ttyACM0
    python -m pnn.boards.probe mqtt://127.0.0.1:1883/sim-0
    python -m pnn.boards.probe 'serial:///dev/pts/5?n_in=256&n_out=16&rate=20000'

Prints the board's HELLO (ids, versions, capabilities) and one RUN of n_in random drive codes: the
round trip, the firmware's share (measured sample period x ticks) and the rest (host + link).
Exit status: 0 done, 1 the board did not answer, 2 a bad URL.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from typing import Any

from pnn_protocol import ProtocolError

from ..link.sync import LinkTimeout, MqttLink, StreamLink, SyncClient
from ..link.url import BadURL, parse_url

FORMS = "serial:///dev/ttyACM0 (or serial:///dev/pts/N), mqtt://host:port/<device-id>"


def open_client(url: str, timeout: float = 2.0) -> SyncClient:
    """A SyncClient for a serial:// or mqtt:// URL.

    Raises:
        BadURL: not such a URL (one line naming the accepted forms). OSError: cannot open it.
    """
    try:
        u = parse_url(url)
    except BadURL as e:
        raise BadURL(f"{e.problem}; the probe takes {FORMS}") from None
    if u.scheme == "serial":
        import serial

        port = serial.Serial(u.target, u["baud"], timeout=0)
        return SyncClient(StreamLink(port), timeout)
    if u.scheme == "mqtt":
        link = MqttLink(u.host, u.port, u.target, u["user"] or None, u["password"] or None, timeout)
        return SyncClient(link, timeout)
    raise BadURL(f"the probe talks to firmware, not to {u.scheme}:// systems; use {FORMS}")


def probe(client: SyncClient, n_in: int, n_out: int, rate: int, settle: int) -> dict[str, Any]:
    """HELLO, then one timed RUN. Returns {"hello": ..., "run": {...timings...}}."""
    hello = client.hello()
    caps = hello["caps"]
    n_in = min(n_in, caps["max_drive"])
    n_out = min(n_out, n_in, caps["max_out"])
    rate = min(max(rate, caps["min_rate"]), caps["max_rate"])
    top = (1 << caps["dac_bits"]) - 1
    drive = struct.pack(f"<{n_in}H", *(random.randint(0, top) for _ in range(n_in)))
    t0 = time.perf_counter()
    r = client.run(drive, 1, n_in, rate, settle=settle, n_out=n_out)
    rtt = time.perf_counter() - t0
    fw = r["period_us"] * (settle + n_in) * 1e-6
    return {
        "hello": hello,
        "run": {"n_in": n_in, "n_out": n_out, "rate": rate, "settle": settle, "rtt_s": rtt, "firmware_s": fw,
                "host_link_s": max(rtt - fw, 0.0), "period_us": r["period_us"], "overruns": r["overruns"]},
    }  # fmt: skip


def report(res: dict[str, Any]) -> str:
    h, r = res["hello"], res["run"]
    lines = [
        f"device {h['device']}  board {h['board']}  firmware {h['fw']}  protocol v{h['proto']}",
        "capabilities: " + ", ".join(f"{k}={v}" for k, v in sorted(h["caps"].items()) if k != "hal"),
        "board details: " + ", ".join(f"{k}={v}" for k, v in sorted(h["caps"].get("hal", {}).items())),
        f"RUN 1 x {r['n_in']} samples -> {r['n_out']} bins at {r['rate']} S/s (settle {r['settle']}):",
        f"  round trip {r['rtt_s'] * 1e3:.2f} ms = firmware {r['firmware_s'] * 1e3:.2f} ms "
        f"(period {r['period_us']} us, {r['overruns']} overruns) + host & link {r['host_link_s'] * 1e3:.2f} ms",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pnn.boards.probe", description="HELLO + one timed RUN.")
    ap.add_argument("url", help=FORMS)
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply")
    args = ap.parse_args(argv)
    try:
        client = open_client(args.url, args.timeout)
    except BadURL as e:
        print(f"probe: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"probe: cannot open {args.url}: {e}", file=sys.stderr)
        return 1
    u = parse_url(args.url)
    try:
        res = probe(client, u["n_in"], u["n_out"], u["rate"], u["settle"])
    except (LinkTimeout, ProtocolError, ConnectionError) as e:
        print(f"probe: {args.url}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
