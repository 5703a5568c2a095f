"""PAT with a learned twin-error model (after DAT, dual adaptive training): twin + a small correction net.

The twin stays frozen; a small network learns, online, the residual "measured - twin" at the drives
training produces, so the backward pass (the vjp of twin + correction at the measured drive) follows
the hardware where training actually drives it. The correction starts at zero (its last layer is
zero-initialised): before it has learned anything, pat-dat is plain PAT.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pat import TwinSpec
from ..system import as_twins


class CorrectedTwin(nn.Module):
    """twin(x) + correction(x): only the correction's parameters are this module's own (and learn).

    The base twin is held outside the module's parameters and state, so an optimizer over
    `parameters()` (e.g. pipeline.TwinRefiner's) moves only the correction.
    """

    def __init__(self, base: nn.Module, hidden: int = 64) -> None:
        super().__init__()
        self._base = [base.requires_grad_(False)]  # a list: not a submodule
        self.correction = nn.Sequential(nn.Linear(base.n_in, hidden), nn.Tanh(), nn.Linear(hidden, len(base.y_mean)))
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    @property
    def base(self) -> nn.Module:
        return self._base[0]

    @property
    def y_mean(self) -> torch.Tensor:
        return self.base.y_mean

    @property
    def y_std(self) -> torch.Tensor:
        return self.base.y_std

    @property
    def metadata(self) -> dict:
        return getattr(self.base, "metadata", {})

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return self.base(drive) + self.correction(drive * 2 - 1) * self.y_std


def corrected(twin: TwinSpec, seed: int) -> TwinSpec:
    """Each twin wrapped in a CorrectedTwin seeded by `seed`; the global RNG is left alone, so the
    network starts exactly as every other trainer's does."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        twins = {s: CorrectedTwin(t) for s, t in as_twins(twin).items()}
    return twins[""] if list(twins) == [""] else twins
