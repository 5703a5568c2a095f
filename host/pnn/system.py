"""The one interface every physical system satisfies: simulated systems, Devices and DevicePools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ._threads import configure as _configure_threads

_configure_threads()  # the library picks torch's thread count (pnn/_threads.py), not only the CLI

TwinSpec = nn.Module | Mapping[str, nn.Module]
"""A twin, or a mapping from source id (a board's URL or id) to that source's twin."""


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


def measure(system: PhysicalSystem, drive: torch.Tensor) -> tuple[torch.Tensor, list[str] | None]:
    """Run the system once, without gradients: float32 responses and, per row, the source that measured it.

    The sources are None when the system does not report them (one source: every row is its own).
    """
    if torch.is_grad_enabled():  # PAT's forward already runs without: no context to enter per call
        with torch.no_grad():
            return measure(system, drive)
    # getattr, not isinstance(system, SourcedSystem): a runtime Protocol check costs ~30 us a call
    # (every attribute looked up), more than the rest of a PAT layer's bookkeeping together.
    run_with_sources = getattr(system, "run_with_sources", None)
    if run_with_sources is not None:
        response, sources = run_with_sources(drive)
        return _float32(response), list(sources)
    return _float32(system(drive)), None


def _float32(response: torch.Tensor) -> torch.Tensor:
    if isinstance(response, torch.Tensor) and response.dtype == torch.float32:
        return response  # already what the seam returns: no conversion call
    return torch.as_tensor(response, dtype=torch.float32)


def as_twins(spec: TwinSpec) -> dict[str, nn.Module]:
    """A twin or a mapping of twins as {source id: twin}; a lone twin serves every source, under the id ""."""
    return dict(spec) if isinstance(spec, Mapping) else {"": spec}
