"""A crash-safe store for collected (drive, response) pairs, and a run's metric rows and checkpoints.

Hardware time is the scarce thing, so every chunk the hardware measures is made durable on its
own: it is written to a temporary file, fsynced, and atomically renamed into place. A crash
(even SIGKILL) loses at most the chunk in flight; what is on disk is always whole chunks, each
carrying a SHA-256 of its arrays so `verify()` can prove nothing was silently damaged.

Layout: ``<root>/meta.json`` (what was measured) and ``<root>/chunk-000000.npz`` ... in order.
A `RunLog` keeps a run folder's ``metrics.jsonl`` and ``checkpoints/<trainer>.pt`` the same way.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = re.compile(r"^chunk-(\d{6})\.npz$")


class StoreError(RuntimeError):
    """The store is damaged or does not match what the caller is collecting."""


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


class DataStore:
    """Append-only chunks of (drive, response) arrays under one folder.

    Args:
        root: the folder (created if missing).
        meta: what is being collected (system description, seed, ...). A store that already holds
            different metadata raises `StoreError` rather than mixing two experiments.
    """

    def __init__(self, root: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".*.tmp"):  # the chunk that was in flight when we crashed
            stale.unlink()
        meta_path = self.root / "meta.json"
        if meta_path.exists():
            self.meta = json.loads(meta_path.read_text())
            if meta is not None and json.loads(json.dumps(meta)) != self.meta:
                raise StoreError(
                    f"{self.root} holds data for a different experiment; use a new folder or the same settings"
                )
        else:
            self.meta = meta or {}
            _write_atomic(meta_path, json.dumps(self.meta, indent=1, sort_keys=True).encode())

    def chunk_paths(self) -> list[Path]:
        """Chunk files in order; a gap in the numbering is damage, not a resumable state."""
        paths = sorted(p for p in self.root.iterdir() if _CHUNK.match(p.name))
        for i, p in enumerate(paths):
            if int(_CHUNK.match(p.name).group(1)) != i:  # type: ignore[union-attr]
                raise StoreError(f"{p} is out of sequence: chunk {i} is missing")
        return paths

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_paths())

    def __len__(self) -> int:
        return sum(len(self._read(p)[0]) for p in self.chunk_paths())

    def append(self, drive: np.ndarray, response: np.ndarray, **extra: np.ndarray) -> int:
        """Durably add one chunk; returns its index."""
        drive, response = np.asarray(drive, np.float32), np.asarray(response, np.float32)
        if len(drive) != len(response):
            raise ValueError(f"drive has {len(drive)} rows but response has {len(response)}")
        index = self.n_chunks
        buf = io.BytesIO()
        arrays = {"drive": drive, "response": response, **{k: np.asarray(v) for k, v in extra.items()}}
        np.savez(buf, sha256=np.array(_digest(*arrays.values())), **arrays)
        _write_atomic(self.root / f"chunk-{index:06d}.npz", buf.getvalue())
        return index

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        arrays = self._read_all(path)
        return arrays["drive"], arrays["response"]

    def _read_all(self, path: Path) -> dict[str, np.ndarray]:
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
            raise StoreError(f"{path} is damaged: {e}") from e
        digest = str(arrays.pop("sha256"))
        if _digest(*arrays.values()) != digest:
            raise StoreError(f"{path} fails its checksum")
        return arrays

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """All drives and responses, concatenated in collection order."""
        parts = [self._read(p) for p in self.chunk_paths()]
        if not parts:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate([d for d, _ in parts]), np.concatenate([r for _, r in parts])

    def load_extra(self, name: str) -> np.ndarray | None:
        """An extra per-row array (e.g. which board measured each row), or None if chunks lack it."""
        parts = [self._read_all(p) for p in self.chunk_paths()]
        if not parts or any(name not in a for a in parts):
            return None
        return np.concatenate([a[name] for a in parts])

    def verify(self) -> int:
        """Check every chunk's checksum and sequence; returns the number of samples. Raises StoreError."""
        return sum(len(self._read(p)[0]) for p in self.chunk_paths())


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


class RunLog:
    """A run folder's metric rows (metrics.jsonl) and per-trainer checkpoints; what resume reads.

    Checkpoints are written atomically (a kill leaves the previous one whole) and each holds the
    trainer's rows so far, so `begin` can make metrics.jsonl agree with it: rows a killed run
    wrote after its last checkpoint are dropped, rows it checkpointed but did not append are
    restored. No row is ever duplicated.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.metrics = self.root / "metrics.jsonl"
        (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)

    def checkpoint_path(self, key: str) -> Path:
        """Where the checkpoint `key` (a trainer and seed: "pat.seed0") lives."""
        return self.root / "checkpoints" / f"{key}.pt"

    def rows(self) -> list[dict[str, Any]]:
        """Every whole row; a line torn by a kill mid-write is skipped."""
        if not self.metrics.exists():
            return []
        rows = []
        for line in self.metrics.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def begin(self, trainer: str, seed: int, history: list[dict[str, Any]]) -> None:
        """Make the file's rows for `trainer` and `seed` exactly `history` (what its checkpoint holds, or none)."""
        mine = lambda r: r.get("trainer") == trainer and r.get("seed", seed) == seed  # noqa: E731
        kept = [r for r in self.rows() if not mine(r)] + list(history)
        _write_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in kept).encode())

    def append(self, row: dict[str, Any]) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def save(self, key: str, checkpoint: dict[str, Any]) -> None:
        """Write one trainer's (and seed's) checkpoint atomically (torch.save format)."""
        import torch

        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        _write_atomic(self.checkpoint_path(key), buf.getvalue())

    def load(self, key: str) -> dict[str, Any] | None:
        """The last checkpoint of `key`, or None if it has none (weights only: no code is unpickled)."""
        import torch

        path = self.checkpoint_path(key)
        return torch.load(path, weights_only=True) if path.exists() else None
