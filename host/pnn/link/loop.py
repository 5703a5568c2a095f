"""One asyncio event loop in a background thread, so plain (synchronous) torch code can use devices.

Every Device and DevicePool of the process shares this loop: their link readers, heartbeats and
reconnects keep running between calls, and many boards are served concurrently by one thread.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    loop.run_forever()


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use (a daemon thread named 'pnn-devices')."""
    global _loop, _thread
    with _lock:
        if _loop is None or not _thread or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            started = threading.Event()
            _thread = threading.Thread(target=_serve, args=(_loop, started), name="pnn-devices", daemon=True)
            _thread.start()
            started.wait()
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the background loop; returns a thread-safe future."""
    loop = background_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("a synchronous device call was made from the device loop itself; await the .aio API instead")
    return asyncio.run_coroutine_threadsafe(coro, loop)


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` on the background loop and wait for its result (exceptions propagate)."""
    future = submit(coro)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"device call did not finish within {timeout} s") from None
    except BaseException:
        future.cancel()  # e.g. KeyboardInterrupt: stop the work rather than leave it running
        raise


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@atexit.register
def _shutdown() -> None:
    """At exit, cancel what still runs (links of devices nobody closed) so nothing dies half-way."""
    if _loop is not None and _loop.is_running():
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_all(), _loop).result(2.0)
        _loop.call_soon_threadsafe(_loop.stop)


def on_loop_thread() -> bool:
    """Whether this code runs on the background loop's own thread (where nothing may block)."""
    return threading.current_thread() is _thread


def call_soon(callback: Any, *args: Any) -> None:
    """Run callback(*args) on the background loop soon (thread-safe; from the loop too)."""
    loop = background_loop()
    if threading.current_thread() is _thread:
        loop.call_soon(callback, *args)
    else:
        loop.call_soon_threadsafe(callback, *args)
