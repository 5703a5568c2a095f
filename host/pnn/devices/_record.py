"""Durable recording of measured (drive, response, source) pairs, off the measuring thread's path."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import numpy as np


class Recorder:
    """Appends chunks to a DataStore from one writer thread, in order (each append is fsynced).

    Args:
        store: a `pnn.store.DataStore` (anything with `append(drive, response, **extra)`).
        min_rows: rows to gather before writing a chunk (bigger chunks, fewer fsyncs); `flush()`
            writes what is gathered. A crash loses at most the rows not yet written.
    """

    def __init__(self, store: Any, min_rows: int = 1) -> None:
        self.store, self.min_rows = store, min_rows
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pnn-store")
        self._last: concurrent.futures.Future | None = None
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._rows = 0
        self.rows_written = 0

    def record(self, drive: np.ndarray, response: np.ndarray, sources: list[str] | np.ndarray) -> None:
        """Queue one batch of pairs; a failed earlier write is raised here rather than lost."""
        if self._last is not None and self._last.done():
            self._last.result()
        self._parts.append((np.asarray(drive, np.float32), np.asarray(response, np.float32), np.asarray(sources)))
        self._rows += len(drive)
        if self._rows >= self.min_rows:
            self._write()

    def _write(self) -> None:
        if not self._parts:
            return
        drive, response, source = (np.concatenate(a) for a in zip(*self._parts, strict=True))
        self._parts, self._rows = [], 0
        self._last = self._writer.submit(self.store.append, drive, response, source=source)
        self.rows_written += len(drive)

    def flush(self) -> None:
        """Write what is gathered and wait until every chunk is durable."""
        self._write()
        if self._last is not None:
            self._last.result()

    def close(self) -> None:
        self.flush()
        self._writer.shutdown(wait=True)
