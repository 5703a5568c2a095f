"""Where a twin's data is measured: uniform random drives (the paper's), the drives training makes, or both.

PAT only ever evaluates the twin where training drives the system (its vjp at the drive the
hardware saw), and trained networks drive it far from uniform noise: encoded inputs, with a
quarter to a third of the drive entries clipped at 0 and as many at 1. `training` measures the
twin's data there: training inputs through freshly initialised networks of the experiment's shape,
their encoder gains spread (by up to `GAIN`) so the pairs cover where training moves them
(`nets.training_pairs`); `mixed` measures half of each chunk at uniform drives, for coverage.

    pairs = sampler("mixed", system, task, cfg)          # None for "uniform"
    twin.collect_sourced(system, 2000, pairs=pairs, store=store)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .data import Task
from .nets import TrainConfig, training_pairs
from .system import PhysicalSystem, measure
from .twin import PairSampler

WHERE = ("uniform", "training", "mixed")
"""The values of `[twin] drives`: where the twin's data is measured."""

GAIN = (1.0, 8.0)
"""Each chunk's encoder gains are scaled by a log-uniform factor in this range: trained nets raise
their gains until half their drive entries or more clip (bench/pat.py's Fashion-MNIST rows: 53%
electronic, 73% optical, against 12% for the initial network)."""


JITTER = 0.1
"""Std of the Gaussian jitter added to each training drive entry before it is measured (then clipped to
[0, 1]). Training inputs vary in few directions (a pixel blank in every image drives its entry at one
level), so a twin fitted on them alone has an unconstrained gradient along the rest; jitter spans
every direction near the drives training makes."""


class _Kept:
    """A view of a system that jitters each drive, measures it and keeps every pair, with its sources."""

    def __init__(self, system: PhysicalSystem, gen: torch.Generator, jitter: float) -> None:
        self.system, self.n_in, self.n_out = system, system.n_in, system.n_out
        self.gen, self.jitter = gen, jitter
        self.kept: list[tuple[torch.Tensor, torch.Tensor, list[str] | None]] = []

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        if self.jitter:
            drive = (drive + self.jitter * torch.randn(drive.shape, generator=self.gen)).clamp(0.0, 1.0)
        response, sources = measure(self.system, drive)
        self.kept.append((drive, response, sources))
        return response, sources if sources is not None else [""] * len(drive)

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run_with_sources(drive)[0]


def sampler(where: str, system: PhysicalSystem, task: Task | None = None, cfg: TrainConfig | None = None
            ) -> PairSampler | None:
    """The pair sampler for `where` (one of WHERE), or None for uniform drives (collect's default).

    `task` and `cfg` (the network's shape) say where training drives the system; "training" and
    "mixed" need them.
    """
    if where not in WHERE:
        raise ValueError(f"twin drives '{where}': must be one of {', '.join(WHERE)}")
    if where == "uniform":
        return None
    if task is None or cfg is None:
        raise ValueError(f"twin drives '{where}' needs the task and the network's TrainConfig")

    def pairs(size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
        kept = _Kept(system, gen, 0.0)
        n_uniform = size // 2 if where == "mixed" else 0
        if n_uniform:
            kept(torch.rand(n_uniform, system.n_in, generator=gen))
        kept.jitter = JITTER
        seed = int(torch.randint(2**31, (1,), generator=gen))
        training_pairs(task, kept, cfg, size - n_uniform, seed=seed, chunk=size - n_uniform, gain=GAIN)
        # every measurement kept, in order (the last layer's few extra rows beyond `size` left off)
        drive = torch.cat([d for d, _, _ in kept.kept])[:size]
        response = torch.cat([r for _, r, _ in kept.kept])[:size]
        if all(s is None for _, _, s in kept.kept):
            return drive, response, None
        sources = [s for d, _, src in kept.kept for s in (src if src is not None else [""] * len(d))]
        return drive, response, sources[:size]

    return pairs


def grad_cosine(twin: Callable[[torch.Tensor], torch.Tensor], exact: Callable[[torch.Tensor], torch.Tensor],
                drives: torch.Tensor, *, seed: int = 1) -> float:
    """Mean per-drive cosine between the twin's vjp and an exact model's (a simulated system's `ideal`).

    For random cotangents, over the drive entries strictly inside (0, 1): an encoder's clip stops the
    gradient at the others. What PAT needs of a twin: its gradient pointing the exact one's way.
    """
    x = drives.detach().double().requires_grad_(True)
    reference = exact(x)
    v = torch.randn(reference.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    (true,) = torch.autograd.grad(reference, x, v)
    xt = drives.detach().float().requires_grad_(True)
    (approx,) = torch.autograd.grad(twin(xt), xt, v.float())
    live = ((drives > 0) & (drives < 1)).double()
    return float(torch.nn.functional.cosine_similarity(true * live, approx.double() * live, dim=1).mean())
