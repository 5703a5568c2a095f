"""Fault injection for links, for tests and benches: corrupted bytes, lost, duplicated, delayed and
reordered frames, disconnects, and actions (kill a board, restart a broker) in the middle of a call.

One fault model (`Faults`), decided frame by frame by a seeded `FaultInjector`, has two carriers:

- `FaultyTransport` wraps any `Transport` (serial, MQTT, sim) and applies the faults to whole messages
  in both directions. Corruption hits the bytes of each message as the byte-stream framing carries it
  (COBS + CRC32, protocol/SPEC.md section 1), so a hit message fails its CRC and is lost, as it is on
  a serial line; over TCP/TLS the checksums and MACs do the same job. `faulty_device` connects one.
- `FaultyCable` is a pty relay (a bad USB cable) between the pty a firmware serves on and a new
  host-side path: the firmware itself receives the damaged bytes and answers them (BAD_CRC, ...), and
  `unplug()` makes the port vanish and come back, as a USB replug does.

`Interrupter` wraps a PhysicalSystem and starts actions at chosen calls, while the call is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import msgpack
import torch

from pnn_protocol import FrameDecoder, frame
from pnn_protocol.errors import ProtocolError

from ..devices import Device
from ..link import loop as _loop
from ..link import wire as _wire
from ..link.client import make_device
from ..link.errors import LinkDown
from ..link.relay import PtyRelay
from ..link.transport import Transport
from ..link.url import parse_url

_MAX_UNIT = 1 << 20  # the cable passes on a delimiter-less run of garbage at this size


@dataclass(frozen=True)
class Faults:
    """What a faulty link does, as probabilities (0 = never).

    Attributes:
        corrupt: per byte: it arrives XORed with a random non-zero byte.
        drop: per frame: it never arrives.
        duplicate: per frame: it arrives twice (each copy corrupted on its own).
        delay: per frame: it arrives `delay_s` late (later frames overtake it).
        reorder: per frame: it is held back and arrives right after the next frame (or after `hold_s`).
        disconnect: per frame: the link drops instead (the port vanishes for `down_s`).
        seed: makes every decision reproducible.
    """

    corrupt: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0
    disconnect: float = 0.0
    delay_s: float = 0.05
    hold_s: float = 0.05
    down_s: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("corrupt", "drop", "duplicate", "delay", "reorder", "disconnect"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault probability {name}={p} is outside [0, 1]")
        for name in ("delay_s", "hold_s", "down_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")

    @classmethod
    def parse(cls, text: str) -> Faults:
        """From `corrupt=1e-3,drop=0.01,duplicate=0.01` (the bench's command-line form)."""
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            name, _, value = item.partition("=")
            if name not in kinds:
                raise ValueError(f"unknown fault {name!r} in {text!r}; known: {', '.join(kinds)}")
            try:
                values[name] = int(value) if name == "seed" else float(value)
            except ValueError:
                raise ValueError(f"fault {name}={value!r} is not a number") from None
        return cls(**values)


class FaultInjector:
    """One direction of a faulty link: decides, reproducibly, what becomes of each frame pushed in.

    `push(frame, now)` queues the copies that will arrive (none when dropped, two when duplicated),
    each with its own corrupted bytes and its arrival time; `due(now)` hands out those whose time has
    come, in arrival order. `counts` says what was done.
    """

    def __init__(self, faults: Faults, stream: int = 0) -> None:
        self.faults = faults
        self.rng = random.Random(f"{faults.seed}/{stream}")
        self.counts = dict(frames=0, dropped=0, duplicated=0, delayed=0, reordered=0, disconnects=0,
                           corrupted_frames=0, corrupted_bytes=0)  # fmt: skip
        self._queue: list[tuple[float, int, bytes]] = []  # heap of (arrival time, order, bytes)
        self._held: list[tuple[float, list[bytes]]] = []  # held back: (latest release, copies)
        self._order = 0

    def disconnect_now(self) -> bool:
        """Whether the link drops at this frame (one draw per frame)."""
        if self.rng.random() < self.faults.disconnect:
            self.counts["disconnects"] += 1
            return True
        return False

    def push(self, data: bytes, now: float) -> None:
        """One frame enters the link at time `now` (seconds, any monotonic clock)."""
        f, rng, c = self.faults, self.rng, self.counts
        c["frames"] += 1
        if rng.random() < f.drop:
            c["dropped"] += 1
            return
        copies = 1
        if rng.random() < f.duplicate:
            c["duplicated"] += 1
            copies = 2
        arrive = now
        if rng.random() < f.delay:
            c["delayed"] += 1
            arrive = now + f.delay_s
        out = [self.corrupt(data) for _ in range(copies)]
        if rng.random() < f.reorder:
            c["reordered"] += 1
            self._held.append((now + f.hold_s, out))
            return
        for b in out:
            self._put(arrive, b)
        for _, held in self._held:  # frames held back arrive right behind this one
            for b in held:
                self._put(arrive, b)
        self._held.clear()

    def corrupt(self, data: bytes) -> bytes:
        """`data` with each byte, with probability `corrupt`, XORed with a random non-zero byte."""
        p = self.faults.corrupt
        if p <= 0.0 or not data:
            return data
        buf: bytearray | None = None
        i = self._gap(p)
        while i < len(data):
            if buf is None:
                buf = bytearray(data)
            buf[i] ^= self.rng.randrange(1, 256)
            self.counts["corrupted_bytes"] += 1
            i += 1 + self._gap(p)
        if buf is None:
            return data
        self.counts["corrupted_frames"] += 1
        return bytes(buf)

    def _gap(self, p: float) -> int:
        # bytes until the next hit: geometric, so a 17 KB frame costs a few draws, not 17,000
        if p >= 1.0:
            return 0
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - p))

    def _put(self, arrive: float, data: bytes) -> None:
        heapq.heappush(self._queue, (arrive, self._order, data))
        self._order += 1

    def due(self, now: float) -> list[bytes]:
        """Frames that have arrived by `now`, oldest first."""
        still = []
        for release, held in self._held:
            if release <= now:
                for b in held:
                    self._put(release, b)
            else:
                still.append((release, held))
        self._held = still
        out = []
        while self._queue and self._queue[0][0] <= now:
            out.append(heapq.heappop(self._queue)[2])
        return out

    def next_due(self) -> float | None:
        """When the next frame arrives (None: nothing is on its way)."""
        times = [r for r, _ in self._held] + ([self._queue[0][0]] if self._queue else [])
        return min(times) if times else None

    def clear(self) -> None:
        """The link went down: whatever was on its way is gone."""
        self._queue.clear()
        self._held.clear()


def _unframe(data: bytes) -> tuple[list[bytes], int]:
    """Payloads of the intact frames in `data`, and how many frames failed (CRC, COBS, ...)."""
    decoder = FrameDecoder(len(data) + 1)
    payloads, bad = [], 0
    for res in decoder.feed(data + b"\x00"):  # the extra delimiter ends a frame whose own one was hit
        if isinstance(res, int):
            bad += 1
        else:
            payloads.append(bytes(res))
    return payloads, bad


@dataclass
class _Direction:
    """One direction of a FaultyTransport: its injector, the pump's wake-up, and where frames go."""

    inj: FaultInjector
    deliver: Callable[[bytes], Awaitable[None]]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FaultyTransport(Transport):
    """Any Transport with `faults` applied to every message, both ways.

    Args:
        inner: the real link (SerialTransport, MqttTransport, SimTransport, ...).
        faults: what goes wrong; requests and replies draw from their own seeded streams. After an
            injected disconnect the link refuses to reopen for `faults.down_s`.

    Attributes:
        tx, rx: the injectors of the host->board and board->host directions (see `counts()`).
        lost_to_corruption: frames the injected corruption cost (they failed their CRC).
    """

    def __init__(self, inner: Transport, faults: Faults) -> None:
        self.inner, self.faults = inner, faults
        self.tx, self.rx = FaultInjector(faults, 0), FaultInjector(faults, 1)
        self.lost_to_corruption = 0
        self._to_board = _Direction(self.tx, self._deliver_to_board)
        self._to_host = _Direction(self.rx, self._deliver_to_host)
        self._inbox: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._tasks: list[asyncio.Future[None]] = []
        self._down: BaseException | None = None
        self._down_until = 0.0

    @property
    def bad_frames(self) -> int:  # type: ignore[override]  (a live sum, not a counter of its own)
        """Frames the inner link rejected plus those the injected corruption cost."""
        return self.inner.bad_frames + self.lost_to_corruption

    @property
    def max_copies(self) -> int:  # type: ignore[override]  (the real link's)
        return self.inner.max_copies

    def counts(self) -> dict[str, dict[str, int]]:
        """What was done to each direction so far."""
        return {"to_board": dict(self.tx.counts), "to_host": dict(self.rx.counts)}

    async def open(self) -> None:
        if time.monotonic() < self._down_until:
            raise LinkDown("injected disconnect: the link is still down")
        self.inner.on_bad_frame = self.on_bad_frame  # the real link's damaged frames reach the core too
        await self.inner.open()
        self._down = None
        self._inbox = asyncio.Queue()
        for d in (self._to_board, self._to_host):
            d.inj.clear()
        self._tasks = [asyncio.ensure_future(self._read_inner()),
                       asyncio.ensure_future(self._pump(self._to_board)),
                       asyncio.ensure_future(self._pump(self._to_host))]  # fmt: skip

    async def send(self, msg: dict[str, Any]) -> None:
        if self._down is not None:
            raise LinkDown(f"faulty link is down: {self._down}")
        if self.tx.disconnect_now():
            reason = LinkDown("injected disconnect (host -> board)")
            await self._cut(reason, self.faults.down_s)
            raise reason
        await self._enter(self._to_board, frame(_wire.encode(msg)))

    async def recv(self) -> dict[str, Any]:
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)  # every later recv learns it too
            raise item
        return item

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        left = tasks
        while left:  # cancel again what is still running: Python 3.11's wait_for (in aiomqtt's publish, under a
            for task in left:  # pump) can swallow a cancel that lands as its wait ends, and the pump loops on
                task.cancel()
            await asyncio.wait(left, timeout=0.1)
            left = [t for t in left if not t.done()]
        for task in tasks:
            if not task.cancelled():
                task.exception()  # (read, so that none is reported "never retrieved")
        await self.inner.close()

    async def _read_inner(self) -> None:
        try:
            while True:
                msg = await self.inner.recv()
                if self.rx.disconnect_now():
                    await self._cut(LinkDown("injected disconnect (board -> host)"), self.faults.down_s)
                    return
                await self._enter(self._to_host, frame(_wire.encode(msg)))
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - whatever ended the link is what recv reports
            await self._cut(e)

    async def _enter(self, d: _Direction, data: bytes) -> None:
        """A frame enters the link: what is due now goes now, in this task; the pump does the rest."""
        d.inj.push(data, time.monotonic())
        await self._flush(d)
        d.wake.set()

    async def _pump(self, d: _Direction) -> None:
        """Deliver late (delayed, held back) frames when their time comes."""
        while True:
            nxt = d.inj.next_due()
            timeout = None if nxt is None else max(0.0, nxt - time.monotonic())
            # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancel that meets the wake-up (close() hung)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await d.wake.wait()
            d.wake.clear()
            try:
                await self._flush(d)
            except LinkDown as e:
                await self._cut(e)
                return

    async def _flush(self, d: _Direction) -> None:
        async with d.lock:
            for data in d.inj.due(time.monotonic()):
                payloads, bad = _unframe(data)
                self.lost_to_corruption += bad
                if bad and d is self._to_host and self.on_bad_frame is not None:
                    self.on_bad_frame()  # the host received a damaged frame, as a serial line shows it
                for payload in payloads:
                    await d.deliver(payload)

    async def _deliver_to_board(self, payload: bytes) -> None:
        await self.inner.send(msgpack.unpackb(payload, raw=False))

    async def _deliver_to_host(self, payload: bytes) -> None:
        try:
            self._inbox.put_nowait(_wire.decode(payload))
        except ProtocolError:  # only a CRC collision gets here: count it as the real links do
            self.lost_to_corruption += 1

    async def _cut(self, reason: BaseException, down_s: float = 0.0) -> None:
        """The link is down: nothing more gets through until the core reopens it."""
        if self._down is None:
            self._down = reason
            self._down_until = time.monotonic() + down_s
            self.tx.clear()
            self.rx.clear()
            self._inbox.put_nowait(reason if isinstance(reason, LinkDown) else LinkDown(str(reason)))
            await self.inner.close()


def faulty_device(url: str, faults: Faults, *, store: Any = None) -> Device:
    """`pnn.connect(url)` with `faults` on its link; `device.aio.transport` is the FaultyTransport.

    The faults apply from the first HELLO on, so even connecting must survive them.
    """
    aio = make_device(parse_url(url))
    aio.transport = FaultyTransport(aio.transport, faults)
    _loop.run(aio.open())
    return Device(aio, store)


class FaultyCable(PtyRelay):
    """A pty relay with faults (a bad USB cable), between the pty master of a board and a new host-side path.

    Bytes are cut into frames at the 0x00 delimiters (a frame is `00 body 00`), and each frame goes through
    that direction's FaultInjector; a disconnect fault unplugs the host side for `faults.down_s`.

    Args:
        board_fd: the master side of the board's pty (the caller keeps owning it).
        faults: applied both ways, each direction with its own seeded stream.
        folder: where to put the `path` symlink (a temporary folder if None).
    """

    def __init__(self, board_fd: int, faults: Faults, folder: str | os.PathLike[str] | None = None) -> None:
        self.faults = faults
        self.to_board, self.to_host = FaultInjector(faults, 0), FaultInjector(faults, 1)
        self._partial = {"board": bytearray(), "host": bytearray()}
        self._body = {"board": False, "host": False}  # a non-zero byte since the last frame ended
        super().__init__(board_fd, folder, name="faulty-cable")

    def counts(self) -> dict[str, Any]:
        """What was done to each direction, and how often the cable was unplugged."""
        return {
            "to_board": dict(self.to_board.counts),
            "to_host": dict(self.to_host.counts),
            "unplugs": self.unplugs,
        }

    def unplug(self, seconds: float | None = None) -> None:
        """Pull the host side out for `seconds` (default `faults.down_s`), then plug it in again."""
        super().unplug(self.faults.down_s if seconds is None else seconds)

    def _on_unplug(self) -> None:
        self._partial["host"].clear()
        self._body["host"] = False
        self.to_host.clear()
        self.to_board.clear()

    def _carry_out(self, now: float) -> None:
        self._out["board"] += b"".join(self.to_board.due(now))
        if self._host >= 0:
            self._out["host"] += b"".join(self.to_host.due(now))

    def _wakeups(self) -> list[float | None]:
        return [self.to_board.next_due(), self.to_host.next_due()]

    def _carry_in(self, side: str, data: bytes, now: float) -> None:
        """Push each frame completed by `data` into the injector of its direction."""
        inj = self.to_host if side == "board" else self.to_board
        buf, pos = self._partial[side], 0
        while pos < len(data):
            # a frame is `00 body 00`: it ends at the first 0x00 after a non-zero byte
            z = data.find(0, pos)
            end = len(data) if z < 0 else z + 1
            self._body[side] |= (end - pos) > (0 if z < 0 else 1)
            buf += data[pos:end]
            pos = end
            if z >= 0 and self._body[side]:
                self._carry(inj, bytes(buf), now)
                buf.clear()
                self._body[side] = False
        if len(buf) > _MAX_UNIT:
            self._carry(inj, bytes(buf), now)
            buf.clear()
            self._body[side] = False

    def _carry(self, inj: FaultInjector, unit: bytes, now: float) -> None:
        if inj.disconnect_now():
            self._pull(self.faults.down_s)
            return
        inj.push(unit, now)


class Interrupter:
    """A PhysicalSystem that passes every call on to `system` and, at chosen calls, starts an action
    in a background thread `after_s` into that call (so it lands while the call is running).

    Args:
        system: a PhysicalSystem (a Device or DevicePool: `run_with_sources` is passed on too).
        actions: call number (1-based) -> action, e.g. {5: kill_board, 9: restart_board}.
        after_s: delay from the start of the call to the action.

    Attributes:
        calls, rows: calls made and rows measured through this wrapper.
    """

    def __init__(
        self, system: Any, actions: Mapping[int, Callable[[], object]], after_s: float = 0.01
    ) -> None:
        self.system, self.actions, self.after_s = system, dict(actions), after_s
        self.n_in, self.n_out = system.n_in, system.n_out
        self.calls = self.rows = 0
        self._threads: list[threading.Timer] = []

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        self.calls += 1
        action = self.actions.get(self.calls)
        if action is not None:
            timer = threading.Timer(self.after_s, action)
            timer.start()
            self._threads.append(timer)
        if hasattr(self.system, "run_with_sources"):
            response, sources = self.system.run_with_sources(drive)
        else:
            response, sources = self.system(drive), [""] * len(drive)
        self.rows += len(drive)
        return response, list(sources)

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run_with_sources(drive)[0]

    def join(self, timeout: float = 60.0) -> None:
        """Wait for every started action to finish."""
        for t in self._threads:
            t.join(timeout)
