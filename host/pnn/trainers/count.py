"""The one query counter: a system wrapper that counts every row driven through the system.

Every trainer and every twin fit measures through a `Counting` system, so "physical queries" means
one thing everywhere: samples the hardware was asked to measure (a drive of a depth-2 network goes
through it twice). Rows are counted per phase ("twin", "train", "eval") so a table can say what the
training cost and what measuring its accuracy cost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..system import PhysicalSystem, measure

__all__ = ["Counting", "counting"]


class Counting:
    """A PhysicalSystem that forwards to `inner` and counts the rows of every call, per phase.

    Attributes:
        rows: {phase: rows measured while that phase was set}; `total` is their sum.
    """

    def __init__(self, inner: PhysicalSystem, phase: str = "train") -> None:
        self.inner, self.n_in, self.n_out = inner, inner.n_in, inner.n_out
        self.rows: dict[str, int] = {}
        self._phase, self._lock = phase, threading.Lock()  # the pipelined trainer measures from a thread

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    @contextmanager
    def phase(self, name: str) -> Iterator[Counting]:
        """Count the rows measured inside the block under `name` (then the previous phase again)."""
        before, self._phase = self._phase, name
        try:
            yield self
        finally:
            self._phase = before

    def _count(self, n: int) -> None:
        with self._lock:
            self.rows[self._phase] = self.rows.get(self._phase, 0) + n

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        self._count(len(drive))
        return self.inner(drive)

    def __getattr__(self, name: str) -> Any:  # stats(), describe(), close(), ... of the real system
        if name == "inner":  # not set yet (copy, unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


class _CountingSourced(Counting):
    """A Counting system over a pool: also says which source measured each row."""

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        self._count(len(drive))
        response, sources = measure(self.inner, drive)
        return response, sources  # type: ignore[return-value]


def counting(system: PhysicalSystem, phase: str = "train") -> Counting:
    """`system` itself if it already counts, else a Counting wrapper (keeping `run_with_sources` if it has one)."""
    if isinstance(system, Counting):
        return system
    cls = _CountingSourced if hasattr(system, "run_with_sources") else Counting
    return cls(system, phase)
