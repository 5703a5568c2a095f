"""The asyncio scheduler behind DevicePool: one batch, many boards, every row measured exactly once.

Each device runs `window` workers. A worker takes the next rows off the batch (as many as its
device takes per request, and no more than keeps every board fed), runs them, and writes the
responses into place. A chunk whose device drops out goes back on the queue for the others; the
batch is done when every row has exactly one response and one source.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque

import numpy as np

from ..link.client import AsyncDevice
from ..link.errors import DeviceUnavailable, OutageError

log = logging.getLogger(__name__)  # pnn.devices._pool: chunks handed to other boards, boards down and back


class _Batch:
    """The rows of one batch still to measure, and what has been measured."""

    def __init__(self, drive: np.ndarray, n_out: int, n_devices: int) -> None:
        self.drive = drive
        self.response = np.empty((len(drive), n_out), np.float32)
        self.source = np.full(len(drive), -1, np.int64)
        self.todo: deque[tuple[int, int]] = deque([(0, len(drive))] if len(drive) else [])
        self.remaining = len(drive)
        # About two chunks per board: one running while the next waits in its queue, few enough
        # that per-request costs stay small, and a chunk lost with a board is cheap to redo.
        self.target = max(1, math.ceil(len(drive) / (2 * n_devices)))
        self.changed = asyncio.Event()
        self.done = asyncio.Event()
        if not self.remaining:
            self.done.set()

    def take(self, limit: int) -> tuple[int, int] | None:
        if not self.todo:
            return None
        start, stop = self.todo.popleft()
        n = min(stop - start, limit, self.target)
        if start + n < stop:
            self.todo.appendleft((start + n, stop))
        return start, start + n

    def give_back(self, start: int, stop: int) -> None:
        self.todo.append((start, stop))
        self._wake()

    def fill(self, start: int, stop: int, response: np.ndarray, source: int) -> None:
        self.response[start:stop] = response
        self.source[start:stop] = source
        self.remaining -= stop - start
        if self.remaining == 0:
            self.done.set()
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class AsyncPool:
    """N devices as one system (asyncio API; `DevicePool` is the synchronous facade).

    Args:
        devices: opened or unopened AsyncDevices with the same n_in and n_out.
        patience: seconds a batch waits for some device to come back when all of them are down
            (default: the longest `patience` of the URLs, 600 s unless set); then OutageError.
    """

    def __init__(self, devices: list[AsyncDevice], patience: float | None = None) -> None:
        if not devices:
            raise ValueError("a DevicePool needs at least one device")
        shapes = {(d.n_in, d.n_out) for d in devices}
        if len(shapes) > 1:
            raise ValueError(f"pool devices disagree on (n_in, n_out): {sorted(shapes)}; give every URL the same n_in/n_out")
        ids = [d.id for d in devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"the same device appears twice in the pool: {ids}")
        self.devices = list(devices)
        self.ids = ids
        self.n_in, self.n_out = devices[0].n_in, devices[0].n_out
        self.patience = max(d.patience for d in devices) if patience is None else patience
        self.waiting: str = ""  # "waiting for <ids> since HH:MM:SS" while every board is down, else ""
        self.rerun_rows = 0  # rows handed to another board after theirs dropped out

    async def open(self) -> None:
        """Connect every device; a device that cannot connect is an error (with its reason)."""
        results = await asyncio.gather(*(d.open() for d in self.devices), return_exceptions=True)
        failed = [(d.id, r) for d, r in zip(self.devices, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            await self.close()
            raise ConnectionError("; ".join(f"{i}: {e}" for i, e in failed))

    @property
    def close_s(self) -> float:
        """The longest close() waits: its boards close side by side, each within its own `close_s`."""
        return max(d.close_s for d in self.devices)

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.devices), return_exceptions=True)

    async def run(self, drive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measure a batch across the pool.

        Args:
            drive: float32 [B, n_in] in [0, 1].

        Returns:
            responses float32 [B, n_out] in row order, and for each row the index (into `ids`) of
            the device that measured it.
        """
        if drive.ndim != 2 or drive.shape[1] != self.n_in:
            raise ValueError(f"pool expects drive of shape [B, {self.n_in}], got {list(drive.shape)}")
        if len(drive) == 1 and (one := await self._one_row(drive)) is not None:
            return one
        batch = _Batch(drive, self.n_out, len(self.devices))
        # Interleaved (every device's first worker, then every second one, ...): tasks start in this
        # order, so the first chunks go round the boards instead of all to the first one.
        workers = [
            asyncio.ensure_future(self._worker(batch, i))
            for slot in range(max(d.window for d in self.devices))
            for i, d in enumerate(self.devices)
            if slot < d.window
        ]
        finished = asyncio.ensure_future(batch.done.wait())
        watch = asyncio.ensure_future(self._watch_outage(batch))
        try:
            pending = set(workers)
            while not batch.done.is_set():
                done, pending = await asyncio.wait(pending | {finished}, return_when=asyncio.FIRST_COMPLETED)
                for task in done - {finished}:
                    task.result()  # a DeviceError (a request no device could run) ends the batch
                if not (pending - {finished}) and not batch.done.is_set():
                    raise OutageError(f"every device in the pool stayed unavailable for {self.patience:g} s "
                                      f"(patience): {self._down()}; {batch.remaining} of {len(drive)} rows unmeasured")
                pending -= {finished}
        finally:
            for task in (*workers, finished, watch):
                task.cancel()
            await asyncio.gather(*workers, finished, watch, return_exceptions=True)
            self.waiting = ""
        return batch.response, batch.source

    async def _one_row(self, drive: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A one-row batch as the workers would run it (one chunk, to the first board that takes it), with
        no worker tasks: the RUN goes out in this call (AsyncDevice.start) to the first connected board
        with a free slot. None where none takes it now, or it dropped out meanwhile (the row goes back to
        the pool's workers, as a worker hands back a chunk)."""
        for index, device in enumerate(self.devices):
            req = device.start(drive, fail_fast=True) if device.connected else None
            if req is None:
                continue
            try:
                await req.fut  # (raises its error; cancelling this call cancels it, as in run_chunk)
                return device.result(req), np.full(1, index, np.int64)
            except DeviceUnavailable as e:
                log.info("rows %d..%d go back to the pool: %s", 0, 1, e)
                self.rerun_rows += 1
                return None
        return None

    def _down(self) -> str:
        return ", ".join(f"{d.id} (down since {time.strftime('%H:%M:%S', time.localtime(d.down_since))})"
                         if d.down_since else d.id for d in self.devices)  # fmt: skip

    async def _watch_outage(self, batch: _Batch) -> None:
        """While every board is down, say so (once per outage) in a log line and in `waiting`."""
        while not batch.done.is_set():
            await asyncio.sleep(0.5)
            if any(d.connected for d in self.devices):
                if self.waiting:
                    log.warning("pool: a board is back; the batch goes on")
                self.waiting = ""
            elif not self.waiting:
                self.waiting = f"waiting for {self._down()}, up to {self.patience:g} s"
                log.warning("pool: every board is down: %s", self.waiting)

    async def _worker(self, batch: _Batch, index: int) -> None:
        """Take chunks for device `index` until the batch is done; hand chunks back if it drops out."""
        device = self.devices[index]
        failures = 0
        while not batch.done.is_set():
            if not device.connected and not await device.wait_connected(self.patience):
                return  # this device stays down: the others finish the batch, or run() reports it
            chunk = batch.take(device.chunk_limit)
            if chunk is None:
                await batch.changed.wait()  # a chunk may come back from a failed device
                continue
            start, stop = chunk
            try:
                response = await device.run_chunk(batch.drive[start:stop], fail_fast=True)
            except DeviceUnavailable as e:
                log.info("rows %d..%d go back to the pool: %s", start, stop, e)
                batch.give_back(start, stop)
                self.rerun_rows += stop - start
                failures += 1
                # Still "connected" but not answering: back off so the others take its chunks.
                await asyncio.sleep(min(2.0, 0.05 * 2**failures))
                continue
            except BaseException:
                batch.give_back(start, stop)
                raise
            failures = 0
            batch.fill(start, stop, response, index)

    def stats(self) -> dict[str, dict]:
        return {d.id: d.stats() for d in self.devices}
