"""Serve in-process simulated boards over MQTT, as the firmware would: `pnn/<id>/req` -> `pnn/<id>/resp`.

For benchmarks and tests that need many boards behind a real broker without a MicroPython process
per board: each board is an InProcessBoard (pnn.physics behind the protocol) with its own broker connection,
a retained "online" status and the last will "offline", and it reconnects with backoff when the
broker goes away.

    python -m pnn.testing.simserve --mqtt HOST:PORT --board ID=SIM_URL [--board ID=SIM_URL ...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiomqtt
import msgpack

from pnn_protocol import messages

from ..link import wire as _wire
from ..link.sim import InProcessBoard, serve_in_order
from ..link.url import parse_url


async def serve_board(host: str, port: int, device: str, board: InProcessBoard, prefix: str = "pnn") -> None:
    """Serve one board until cancelled (reconnecting to the broker as needed)."""
    req, resp, status = messages.topics(device, prefix)
    board.device = device
    backoff = 0.05
    while True:
        try:
            will = aiomqtt.Will(status, b"offline", qos=1, retain=True)
            async with aiomqtt.Client(host, port, identifier=f"pnn-sim-{device}", will=will, keepalive=10) as client:
                await client.subscribe(req, qos=0)
                await client.publish(status, b"online", qos=1, retain=True)
                backoff = 0.05
                inbox: asyncio.Queue = asyncio.Queue()
                worker = asyncio.ensure_future(_work(client, board, resp, inbox))
                try:
                    async for message in client.messages:
                        inbox.put_nowait((time.monotonic(), message.payload))
                finally:
                    worker.cancel()
        except aiomqtt.MqttError:
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, 2.0)


async def _work(client: aiomqtt.Client, board: InProcessBoard, topic: str, inbox: asyncio.Queue) -> None:
    """The board's one thread of work: requests in arrival order, each answered on the response topic."""
    decoded: asyncio.Queue = asyncio.Queue()

    async def decode() -> None:
        while True:
            arrived, payload = await inbox.get()
            try:
                msg = msgpack.unpackb(payload, raw=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError):
                msg = None  # answered below with BAD_PAYLOAD by the board's own checks
            decoded.put_nowait((arrived, msg))

    async def deliver(reply: dict) -> None:
        await client.publish(topic, _wire.encode(reply), qos=0)

    decoder = asyncio.ensure_future(decode())
    try:
        await serve_in_order(board, decoded, deliver)
    finally:
        decoder.cancel()


async def serve(host: str, port: int, boards: dict[str, str], prefix: str = "pnn") -> None:
    """Serve several boards (device id -> sim URL) from one process until cancelled."""
    sims = {device: InProcessBoard(parse_url(url)) for device, url in boards.items()}
    await asyncio.gather(*(serve_board(host, port, d, b, prefix) for d, b in sims.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pnn.testing.simserve", description="Serve simulated boards over MQTT.")
    parser.add_argument("--mqtt", required=True, metavar="HOST:PORT")
    parser.add_argument("--board", action="append", required=True, metavar="ID=SIM_URL")
    parser.add_argument("--prefix", default="pnn")
    args = parser.parse_args(argv)
    host, _, port = args.mqtt.rpartition(":")
    boards = dict(b.split("=", 1) for b in args.board if "=" in b)
    if not host or not port.isdigit() or len(boards) != len(args.board):
        print("simserve: error: use --mqtt HOST:PORT --board ID=sim://electronic?seed=N ...", file=sys.stderr)
        return 2
    print(f"simserve: {len(boards)} boards via mqtt {host}:{port}", file=sys.stderr, flush=True)
    try:
        asyncio.run(serve(host, int(port), boards, args.prefix))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
