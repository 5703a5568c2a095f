"""Synchronous faces of Device and DevicePool, so plain torch code calls boards like any module.

The asyncio work runs on the shared background loop (`_loop`); these classes convert tensors,
wait for results and record every measured (drive, response) pair to a DataStore when given one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..link import loop as _loop
from ..link.client import AsyncDevice, make_device
from ..link.direct import DirectPath
from ..link.url import parse_url
from ..store import Recorder
from ._pool import AsyncPool


def _as_drive(drive: Any, n_in: int) -> np.ndarray:
    """float32 [B, n_in] in [0, 1] (the DAC saturates), or a ValueError saying what was expected."""
    if isinstance(drive, torch.Tensor):
        try:  # a CPU tensor that needs no grad: its memory, in one call (each torch call costs a few us)
            array = drive.numpy()
        except (RuntimeError, TypeError):  # needs grad, lives on a GPU, or has no numpy dtype (bfloat16)
            array = drive.detach().to("cpu", torch.float32).numpy()
        array = array.astype(np.float32, copy=False)
    elif isinstance(drive, np.ndarray):
        array = drive.astype(np.float32, copy=False)
    else:
        raise ValueError(f"drive must be a torch.Tensor or numpy array [B, {n_in}], got {type(drive).__name__}")
    if array.ndim != 2 or array.shape[1] != n_in:
        raise ValueError(f"expected drive of shape [B, {n_in}] (B examples x n_in={n_in}), got {list(array.shape)}")
    lo = array.min() if array.size else 0.0  # (min propagates NaN: one pass, no array of flags)
    if lo != lo:
        raise ValueError("drive contains NaN")
    out = np.maximum(array, 0.0)  # a copy, clipped (np.clip's wrapper costs more than the work here)
    return np.minimum(out, 1.0, out=out)


class _SyncSystem:
    """What Device and DevicePool share: tensors in and out, futures, recording, closing."""

    aio: Any  # AsyncDevice or AsyncPool: narrowed in the subclasses
    n_in: int
    n_out: int

    def __init__(self, store: Any = None) -> None:
        self._recorder = Recorder(store) if store is not None else None
        self.closed = False

    async def _measure(self, drive: np.ndarray) -> tuple[np.ndarray, list[str]]:
        raise NotImplementedError

    async def _measure_recorded(self, drive: np.ndarray) -> tuple[torch.Tensor, list[str]]:
        return self._recorded(drive, *await self._measure(drive))

    def _recorded(self, drive: np.ndarray, response: np.ndarray, sources: list[str]) -> tuple[torch.Tensor, list[str]]:
        """A measurement as the caller gets it, recorded first (both paths, the fast one and the coroutine)."""
        if self._recorder is not None:
            self._recorder.record(drive, response, sources)
        return torch.from_numpy(response), sources

    def submit(self, drive: torch.Tensor) -> concurrent.futures.Future[tuple[torch.Tensor, list[str]]]:
        """Start measuring `drive` and return at once; the future gives (responses, source ids)."""
        return self._submit(self._checked(drive))

    def _checked(self, drive: torch.Tensor) -> np.ndarray:
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return _as_drive(drive, self.n_in)

    def _submit(self, array: np.ndarray) -> concurrent.futures.Future[tuple[torch.Tensor, list[str]]]:
        out: concurrent.futures.Future[tuple[torch.Tensor, list[str]]] = concurrent.futures.Future()
        _loop.call_soon(self._begin, array, out)
        return out

    def _begin(self, drive: np.ndarray, out: concurrent.futures.Future) -> None:
        """On the loop: send at once where the fast path can (one callback, no task), else run the coroutine."""
        if out.cancelled():
            return
        req = self._start(drive)
        if req is not None:
            req.fut.add_done_callback(lambda _f: self._settle(drive, req, out))
            out.add_done_callback(lambda f: f.cancelled() and _loop.call_soon(req.fut.cancel))
            return
        task = asyncio.ensure_future(self._measure_recorded(drive))
        task.add_done_callback(lambda t: _copy(t, out))
        out.add_done_callback(lambda f: f.cancelled() and _loop.call_soon(task.cancel))

    def _start(self, drive: np.ndarray) -> Any:
        """The fast path's request (AsyncDevice.start), or None for the coroutine path."""
        return None

    def _settle(self, drive: np.ndarray, req: Any, out: concurrent.futures.Future) -> None:
        """The fast path's end: the reply as (tensor, sources) into `out`, recorded like the slow path."""
        if req.fut.cancelled():
            out.cancel()
            return
        try:
            result = self._recorded(drive, self.aio.result(req), [self.id] * len(drive))  # type: ignore[attr-defined]  (only Device has a fast path)
        except BaseException as e:  # noqa: BLE001 - every failure goes to the caller
            if out.set_running_or_notify_cancel():
                out.set_exception(e)
            return
        if out.set_running_or_notify_cancel():  # False: the caller cancelled it meanwhile
            out.set_result(result)

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Measure `drive` float [B, n_in]; returns float32 [B, n_out] and each row's device id."""
        return self.submit(drive).result()

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        """Measure `drive` float [B, n_in] in [0, 1]; returns float32 [B, n_out] (ADC full-scale fractions)."""
        return self.run_with_sources(drive)[0]

    def close(self) -> None:
        """Disconnect (idempotent) and finish writing recorded data."""
        if self.closed:
            return
        self.closed = True
        _loop.run(self.aio.close())
        if self._recorder is not None:
            self._recorder.close()

    def flush(self) -> None:
        """Wait until every recorded chunk is durable in the store."""
        if self._recorder is not None:
            self._recorder.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Device(_SyncSystem):
    """One board (serial, MQTT or simulated) as a PhysicalSystem; make one with `pnn.connect(url)`.

    Attributes:
        id: the board's stable name (its URL without secrets or link tuning): the key for its twin.
        aio: the asyncio client, for code that runs its own event loop.
    """

    aio: AsyncDevice

    def __init__(self, aio: AsyncDevice, store: Any = None) -> None:
        super().__init__(store)
        self.aio = aio
        self.id, self.n_in, self.n_out = aio.id, aio.n_in, aio.n_out
        #: a serial board's calls on the caller's thread (None: every call goes through the loop)
        self.direct = DirectPath(aio) if DirectPath.supported(aio) else None

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Measure `drive` float [B, n_in]; returns float32 [B, n_out] and each row's device id.

        A one-request call with nothing else in flight runs on this thread (pnn.link.direct), the
        rest through the loop."""
        array = self._checked(drive)
        if self.direct is not None and (response := self.direct.run(array)) is not None:
            return self._recorded(array, response, [self.id] * len(array))
        return self._submit(array).result()

    @property
    def capabilities(self) -> dict[str, Any]:
        """What the board said in HELLO (bit depths, limits, rates, ...)."""
        return self.aio.hello

    async def _measure(self, drive: np.ndarray) -> tuple[np.ndarray, list[str]]:
        return await self.aio.run(drive), [self.id] * len(drive)

    def _start(self, drive: np.ndarray) -> Any:
        return self.aio.start(drive)

    def configure(self, **settings: int) -> dict[str, Any]:
        """Change board settings with CONFIG (e.g. rest_code=128); re-applied after every reconnect or reboot."""
        return _loop.run(self.aio.configure(settings))

    @property
    def waiting(self) -> str:
        """"waiting for <id> since HH:MM:SS" while the link is down, else "" (for a progress bar)."""
        since = self.aio.down_since
        return f"waiting for {self.id} since {time.strftime('%H:%M:%S', time.localtime(since))}" if since else ""

    def stats(self) -> dict[str, Any]:
        """samples, samples_per_s, busy_s, retries, errors, reconnects, ... of this board."""
        return self.aio.stats()

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (stored as twin metadata)."""
        return {"class": "Device", "id": self.id, "n_in": self.n_in, "n_out": self.n_out, "hello": self.aio.hello}

    def __repr__(self) -> str:
        return f"Device({self.id!r})"


class DevicePool(_SyncSystem):
    """One PhysicalSystem served by N boards; each row's source says which board measured it.

    Attributes:
        ids: the boards' ids, in the order given. devices: the boards as Devices.

    Args:
        devices: Devices (from `connect`) or URLs; all with the same n_in and n_out. The pool owns
            them: closing it closes them.
        store: a DataStore that receives every batch (drive, response, source id per row).
        patience: seconds a batch waits for a board to come back when every board is down
            (default: the longest `patience` of the URLs, 600 s unless set); then OutageError.
    """

    aio: AsyncPool

    def __init__(self, devices: Sequence[Device | str], store: Any = None, patience: float | None = None) -> None:
        super().__init__(store)
        if isinstance(devices, str | Device):
            raise ValueError("DevicePool takes a list of Devices or URLs; for one board use pnn.connect(url)")
        members: list[Device] = []
        new: list[AsyncDevice] = []  # made here from URLs: every URL is parsed before any connects
        for d in devices:
            if isinstance(d, Device):
                members.append(d)
            elif isinstance(d, str):
                new.append(make_device(parse_url(d), patience=patience))
                members.append(Device(new[-1]))
            else:
                raise ValueError(f"DevicePool takes Devices or URL strings, got {type(d).__name__}")
        #: the boards, each also usable on its own (e.g. to fit its twin); the pool closes them
        self.devices = members
        self.aio = AsyncPool([m.aio for m in members], patience)
        self.ids, self.n_in, self.n_out = self.aio.ids, self.aio.n_in, self.aio.n_out
        try:
            _loop.run(AsyncPool(new).open() if new else _noop())
        except BaseException:
            self.closed = True
            raise

    async def _measure(self, drive: np.ndarray) -> tuple[np.ndarray, list[str]]:
        response, source = await self.aio.run(drive)
        return response, [self.ids[i] for i in source]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per device id: samples, samples_per_s, busy_s, retries, errors, reconnects, ..."""
        return self.aio.stats()

    @property
    def waiting(self) -> str:
        """"waiting for <ids> since ..." while every board is down, else "" (for a progress bar)."""
        return self.aio.waiting

    def describe(self) -> dict[str, Any]:
        return {"class": "DevicePool", "ids": self.ids, "n_in": self.n_in, "n_out": self.n_out}

    def __repr__(self) -> str:
        return f"DevicePool({self.ids!r})"


async def _noop() -> None:
    return None


def _copy(task: asyncio.Future, out: concurrent.futures.Future) -> None:
    """A finished task's outcome into the caller's future."""
    if task.cancelled():
        out.cancel()
    elif out.set_running_or_notify_cancel():  # False: the caller cancelled it meanwhile
        if task.exception() is not None:
            out.set_exception(task.exception())
        else:
            out.set_result(task.result())


def connect(url: str, *, store: Any = None, patience: float | None = None) -> Device:
    """Connect to one board and check it can do what the URL asks.

    Args:
        url: `sim://electronic?seed=3&realtime=1`, `serial:///dev/ttyACM0?rate=20000`,
            `mqtt://host:1883/<device-id>` (n_in / n_out default 64; see the docs for every parameter).
        store: a DataStore to record every (drive, response) pair to.
        patience: seconds a call waits for the board to come back when its link is down (default:
            the URL's `patience`, 600 s unless set); then OutageError.

    Returns:
        A connected Device (a PhysicalSystem).

    Raises:
        ValueError: a malformed URL or a capability the board lacks. ConnectionError: it does not answer.
    """
    aio = make_device(parse_url(url), patience=patience)
    _loop.run(aio.open())
    return Device(aio, store)


def connect_all(urls: str | Sequence[str], *, store: Any = None, patience: float | None = None) -> Device | DevicePool:
    """One URL -> a Device; a list of URLs -> a DevicePool over them (`patience` as in connect)."""
    if isinstance(urls, str):
        return connect(urls, store=store, patience=patience)
    return DevicePool(list(urls), store=store, patience=patience)
