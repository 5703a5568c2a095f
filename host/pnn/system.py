"""The one interface every physical system satisfies: simulated systems, Devices and DevicePools."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class PhysicalSystem(Protocol):
    """A physical layer: drive in [0, 1]^n_in -> measured response in R^n_out.

    `__call__` takes a float32 tensor [B, n_in] and returns a float32 tensor [B, n_out]. It is
    a measurement: it need not be differentiable, deterministic or even repeatable.
    """

    n_in: int
    n_out: int

    def __call__(self, drive: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SourcedSystem(PhysicalSystem, Protocol):
    """A system served by several sources (boards); it says which one measured each sample.

    `run_with_sources` returns the responses and, for each row, the id of the source that
    produced it, so PAT can take each sample's gradient from that source's own twin.
    """

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]: ...
