"""Physics-aware training: forward on the physical system, backward through its digital twin.

PAT (Wright et al., Nature 601, 549, 2022) treats a measurement as a layer. The forward pass
returns what the hardware measured; the backward pass is the vector-Jacobian product of a
differentiable twin *evaluated at the drive the hardware actually saw*, so the twin's errors only
bend the gradient's direction and never the forward values the loss is computed from.
"""

from __future__ import annotations

import torch
from torch import nn

from .system import PhysicalSystem, TwinSpec, as_twins, measure

__all__ = ["PhysicalLayer", "TwinSpec"]


class _PhysicsAware(torch.autograd.Function):
    """y = system(x) forward; dL/dx = J_twin(x)^T dL/dy backward (per source when several)."""

    @staticmethod
    def forward(ctx, drive: torch.Tensor, layer: PhysicalLayer) -> torch.Tensor:
        measured, sources = layer.measure(drive.detach())
        ctx.save_for_backward(drive)
        ctx.layer, ctx.sources = layer, sources
        # A new tensor object, not a copy of the data: autograd marks what forward returns as this
        # call's output, and must not mark a tensor the system keeps (a cached or replayed response).
        return measured.detach() if measured.dtype == drive.dtype else measured.to(drive.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (drive,) = ctx.saved_tensors
        if ctx.sources is None or ctx.layer.source_ids == [""]:  # one twin: the whole batch, no index copies
            with torch.enable_grad():
                x = drive.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(ctx.layer.twins[0](x), x, grad_out)
            return grad, None
        grad = torch.zeros_like(drive)
        for rows, twin in ctx.layer.twins_for(ctx.sources, len(drive)):
            with torch.enable_grad():
                x = drive[rows].detach().requires_grad_(True)
                (grad[rows],) = torch.autograd.grad(twin(x), x, grad_out[rows])
        return grad, None


class PhysicalLayer(nn.Module):
    """A physical system as a layer of a torch model, trained with PAT.

    Args:
        system: anything satisfying `PhysicalSystem`; if it also has `run_with_sources`, each
            sample's gradient comes from the twin of the source that measured it.
        twin: a differentiable `nn.Module` [B, n_in] -> [B, n_out], or a mapping from source id to
            such a module. The twin is frozen here: only parameters upstream of the layer learn.
    """

    def __init__(self, system: PhysicalSystem, twin: TwinSpec) -> None:
        super().__init__()
        self.system = system
        twins = as_twins(twin)
        # Source ids are URLs (dots, slashes), so they index a list rather than name submodules.
        self.source_ids = list(twins)
        self.twins = nn.ModuleList(twins.values()).requires_grad_(False)

    @property
    def n_in(self) -> int:
        return self.system.n_in

    @property
    def n_out(self) -> int:
        return self.system.n_out

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return _PhysicsAware.apply(drive, self)

    def measure(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str] | None]:
        """Run the system once; returns responses and, if the system reports them, their sources."""
        return measure(self.system, drive)

    def twins_for(self, sources: list[str] | None, batch: int):
        """Yield (row indices, twin) pairs that together cover every row of the batch once."""
        if sources is None or self.source_ids == [""]:
            yield torch.arange(batch), self.twins[0]
            return
        for source in sorted(set(sources)):
            if source not in self.source_ids:
                raise KeyError(f"no twin for source {source!r}; twins exist for {self.source_ids}")
            rows = torch.tensor([i for i, s in enumerate(sources) if s == source], dtype=torch.long)
            yield rows, self.twins[self.source_ids.index(source)]
