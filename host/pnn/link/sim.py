"""A simulated board in the host process: pnn.physics behind the firmware's message interface.

`InProcessBoard` answers protocol v1 messages exactly as the firmware does (HELLO caps, RUN validation
with pnn_protocol's own checks, the duplicate-id RESULT cache, ERRORs), so the Device core cannot
tell it from a board. Drives arrive as DAC codes and responses leave as ADC codes: the physics runs
with its own quantisation off and the board quantises at its converters. With `realtime` it takes
the time a board would (per example: settle + n_drive ticks at the sample rate), on a timeline of
its own: requests queued behind each other run back to back even when the host is late.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import torch

from pnn_protocol import errors, messages
from pnn_protocol.errors import ProtocolError

from .errors import LinkDown
from .transport import Transport
from .url import DeviceURL

FW_VERSION = "host-sim-0.1.0"
CACHE = 8
MAX_FRAME = 65_536
MAX_SETTLE = 65_535


def make_physics(url: DeviceURL) -> Any:
    """The pnn.physics system a sim URL names, with converter quantisation left to the board."""
    from .. import physics

    p = url.params
    # noise=off keeps the unit-to-unit variation: two seeds are still two different boards
    quiet = {"additive": 0.0, "multiplicative": 0.0, "drift": 0.0} if p["noise"] == "off" else {}
    noise = physics.Noise(dac_bits=None, adc_bits=None, **quiet)
    kwargs: dict[str, Any] = {"seed": p["seed"], "noise": noise}
    if url.target in ("electronic", "mechanical"):
        kwargs["sample_rate"] = float(p["rate"])
        if p["substeps"]:
            kwargs["substeps"] = p["substeps"]
    cls = physics.KINDS[url.target]
    # The full readout (one value per drive sample); the board bins it into the n_out a RUN asks for.
    return cls(p["n_in"], p["n_in"], **kwargs)


class InProcessBoard:
    """One simulated board: message in, message out (None when the simulated link loses the reply)."""

    def __init__(self, url: DeviceURL) -> None:
        p = url.params
        self.url, self.physics = url, make_physics(url)
        self.device = f"sim-{url.target}-{p['seed']}"
        self.dac_bits, self.adc_bits = p["dac_bits"], p["adc_bits"]
        self.realtime, self.rest_code = p["realtime"], 0
        self.caps = {
            "dac_bits": self.dac_bits, "adc_bits": self.adc_bits, "max_drive": p["n_in"], "max_batch": p["max_batch"],
            "max_out": p["n_in"], "max_codes": messages.max_codes(MAX_FRAME), "min_rate": p["rate"],
            "max_rate": p["rate"], "max_oversample": 16, "max_settle": MAX_SETTLE, "max_frame": MAX_FRAME,
            "cache": CACHE, "rest_code": 0, "hal": {"physics": self.physics.describe()["class"]},
        }
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._rng = np.random.default_rng([p["seed"], 0x11D])
        self._free_at = 0.0  # when the board's own timeline is next idle (monotonic seconds)
        self.runs = 0  # RUNs actually executed (cache hits excluded)

    async def answer(self, msg: Any, arrived: float) -> tuple[float, dict[str, Any] | None]:
        """The reply to one request (None: the simulated link lost it) and when it may leave the board.

        Requests are answered in arrival order; a RUN's reply leaves when the board's own timeline
        finishes it, anything else after the work queued before it (as the firmware serves them).
        """
        try:
            t, rid = messages.check_request(msg)
            if t == messages.RUN:
                reply = await self._run(msg, rid, arrived)
            elif t == messages.HELLO:
                reply = messages.hello(rid, self.device, FW_VERSION, "sim", self.caps)
            elif t == messages.PING:
                reply = messages.pong(rid, msg.get("data"))
            elif t == messages.CONFIG:
                reply = self._config(msg, rid)
            elif t == messages.RESET:
                if msg.get("hard"):
                    raise ProtocolError(errors.UNSUPPORTED, "the simulator has no hard reset", rid)
                self._cache.clear()
                self.rest_code = 0
                reply = messages.ack(messages.RESET, rid)
            else:  # REPL: nothing to return to in-process
                raise ProtocolError(errors.UNSUPPORTED, "the in-process simulator has no REPL", rid)
        except ProtocolError as e:
            reply = messages.error(e.req_id, e.code, e.msg)
        leaves = max(time.monotonic(), self._free_at) if self.realtime else time.monotonic()
        if self.url["drop"] and self._rng.random() < self.url["drop"]:
            return leaves, None  # the simulated link lost it; the host's retry (same id) recovers
        return leaves, reply

    def _config(self, msg: dict[str, Any], rid: int) -> dict[str, Any]:
        settings = msg.get("set") or {}
        if not isinstance(settings, dict) or set(settings) - set(messages.CONFIG_KEYS):
            raise ProtocolError(errors.BAD_FIELD, f"settable keys: {', '.join(messages.CONFIG_KEYS)}", rid)
        if "rest_code" in settings:
            self.rest_code = messages.get_int(settings, "rest_code", 0, 2**self.dac_bits - 1, rid)
        return messages.config(rid, {"rest_code": self.rest_code})

    def _measure(self, x: torch.Tensor, oversample: int) -> torch.Tensor:
        """Readout [batch, n_drive] in full-scale units; oversampling averages repeated reads."""
        total = self.physics(x)
        for _ in range(oversample - 1):
            total = total + self.physics(x)
        return total / oversample

    async def _run(self, msg: dict[str, Any], rid: int, arrived: float) -> dict[str, Any]:
        if rid in self._cache:
            return self._cache[rid]  # a retry: answer again, never run again
        drive, batch, n_drive, rate, oversample, settle, n_out, _ = messages.check_run(msg, self.caps, rid)
        if n_drive != self.physics.n_in:
            raise ProtocolError(errors.OUT_OF_RANGE, f"this board plays n_drive={self.physics.n_in} only", rid)
        started = time.monotonic()
        start = max(arrived, self._free_at)
        self._free_at = start + batch * (settle + n_drive) / rate
        codes = np.frombuffer(drive, "<u2").reshape(batch, n_drive)
        x = torch.from_numpy(np.minimum(codes, 2**self.dac_bits - 1).astype(np.float32) / (2**self.dac_bits - 1))
        # off the event loop, so the other boards' clocks and links keep running meanwhile
        readout = await asyncio.to_thread(self._measure, x, oversample)
        top = 2**self.adc_bits - 1
        adc = torch.round(readout.clamp(0, 1) * top)  # each tick's reading is a code
        bins = [adc[:, i * n_drive // n_out : (i + 1) * n_drive // n_out].mean(1) for i in range(n_out)]
        resp = torch.round(torch.stack(bins, 1)).numpy().astype("<u2")
        if self.realtime:  # the reply waits for the board's timeline (see answer)
            period_us = round(1e6 / rate)
        else:  # as fast as the host computes: report the period it really took
            period_us = round(1e6 * (time.monotonic() - started) / (batch * (settle + n_drive)))
        reply = messages.result(rid, resp.tobytes(), batch, n_out, period_us, 0)
        self.runs += 1
        self._cache[rid] = reply
        if len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return reply


async def serve_in_order(board: InProcessBoard, inbox: asyncio.Queue, deliver: Callable[[dict[str, Any]], Awaitable[None]]
                         ) -> None:
    """A board's loop: compute each request as soon as it arrives (in order), deliver each reply when
    the board would have finished it (in order). Computing ahead keeps the host's simulation work
    off the board's timeline, as if the physics ran in the hardware."""
    timed: asyncio.Queue[tuple[float, dict[str, Any] | None]] = asyncio.Queue()

    async def release() -> None:
        while True:
            leaves, reply = await timed.get()
            if leaves > time.monotonic():
                await asyncio.sleep(leaves - time.monotonic())
            if reply is not None:
                await deliver(reply)

    releaser = asyncio.ensure_future(release())
    try:
        while True:
            arrived, msg = await inbox.get()
            timed.put_nowait(await board.answer(msg, arrived))
    finally:
        releaser.cancel()


class SimTransport(Transport):
    """The in-process link to an InProcessBoard; `unplug` simulates pulling its cable for a while."""

    def __init__(self, url: DeviceURL) -> None:
        self.url = url
        self.board: InProcessBoard | None = None
        self._inbox: asyncio.Queue[tuple[float, Any]] | None = None
        self._outbox: asyncio.Queue[dict[str, Any] | None] | None = None
        self._server: asyncio.Task[None] | None = None
        self._unplugged_until = 0.0

    async def open(self) -> None:
        if time.monotonic() < self._unplugged_until:
            raise LinkDown(f"{self.url.id}: unplugged")
        if self.board is None:
            self.board = InProcessBoard(self.url)  # built once: a reconnect finds the same board
        self._inbox, self._outbox = asyncio.Queue(), asyncio.Queue()
        self._server = asyncio.ensure_future(self._serve(self.board, self._inbox, self._outbox))

    async def _serve(self, board: InProcessBoard, inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
        async def deliver(reply: dict[str, Any]) -> None:
            outbox.put_nowait(reply)

        await serve_in_order(board, inbox, deliver)

    async def send(self, msg: dict[str, Any]) -> None:
        if self._inbox is None:
            raise LinkDown(f"{self.url.id}: not open")
        self._inbox.put_nowait((time.monotonic(), msg))

    async def recv(self) -> dict[str, Any]:
        if self._outbox is None:
            raise LinkDown(f"{self.url.id}: not open")
        msg = await self._outbox.get()
        if msg is None:
            raise LinkDown(f"{self.url.id}: unplugged")
        return msg

    async def close(self) -> None:
        if self._server is not None:
            self._server.cancel()
            await asyncio.gather(self._server, return_exceptions=True)
        self._server = self._inbox = self._outbox = None

    def unplug(self, seconds: float) -> None:
        """Cut the link now and refuse to reopen it for `seconds` (requests in flight are lost)."""
        self._unplugged_until = time.monotonic() + seconds
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._server is not None:
            self._server.cancel()
