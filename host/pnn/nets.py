"""The networks PAT trains: encoders, standardisers, a readout, and layer slots filled per trainer.

The network (after the paper): input -> encoder -> physical layer -> (standardise -> encoder ->
physical layer) x (depth - 1) -> standardise -> linear readout. Encoders make the layer's drive:
`affine` is the element-wise `clip(a*h + b, 0, 1)` of the electronic and mechanical nets, `concat`
is the SHG net's `[h, theta]` with trainable theta. `build` says what fills the layer slots while
training and while testing, for each trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .data import Task
from .link.errors import UserError
from .pat import PhysicalLayer, TwinSpec
from .system import PhysicalSystem

Trainer = Literal["digital", "in-silico", "pat"]
TRAINERS: tuple[Trainer, ...] = ("digital", "in-silico", "pat")


class WidthError(UserError, ValueError):
    """The task's inputs cannot fill the system's drive (its n_in); the message says how to mend it."""


@dataclass
class TrainConfig:
    """What to train and how; every field has a sensible default for the digits task."""

    depth: int = 2
    encoder: Literal["affine", "concat"] = "affine"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.02
    seed: int = 0


class Standardise(nn.Module):
    """Fixed per-channel (x - mean) / std, so encoders see unit-scale inputs whatever the physics."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp_min(1e-6))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.mean) / self.std


def _fit_width(h: torch.Tensor, width: int) -> torch.Tensor:
    """Hold each value for width / n ticks (a DAC holding a pixel), so n features drive `width` samples."""
    n = h.shape[1]
    if width % n:
        raise WidthError(f"an input of {n} values cannot fill a drive of {width} samples; use a multiple of {n}")
    return h.repeat_interleave(width // n, dim=1)


class AffineEncoder(nn.Module):
    """drive = clip(a * h + b, 0, 1), element-wise with trainable a, b."""

    def __init__(self, n_in: int, gen: torch.Generator) -> None:
        super().__init__()
        self.a = nn.Parameter(0.25 + 0.05 * torch.randn(n_in, generator=gen))
        self.b = nn.Parameter(0.5 + 0.05 * torch.randn(n_in, generator=gen))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.a * _fit_width(h, len(self.a)) + self.b, 0, 1)


class ConcatEncoder(nn.Module):
    """drive = [clip(a * h + b, 0, 1), clip(theta, 0, 1)]: data and trainable parameters side by side.

    The data half is biased towards full amplitude (b = 0.7): in a system whose output grows as a
    power of the drive (SHG: the fourth), weak inputs drown in the readout noise.
    """

    def __init__(self, n_data: int, n_in: int, gen: torch.Generator) -> None:
        super().__init__()
        if n_in <= n_data:
            raise WidthError(f"concat needs a drive wider than the data ({n_data}); the system takes {n_in}")
        self.a = nn.Parameter(0.2 + 0.02 * torch.randn(n_data, generator=gen))
        self.b = nn.Parameter(0.7 + 0.02 * torch.randn(n_data, generator=gen))
        self.theta = nn.Parameter(0.5 + 0.2 * torch.rand(n_in - n_data, generator=gen))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        data = torch.clamp(self.a * h + self.b, 0, 1)
        return torch.cat([data, torch.clamp(self.theta, 0, 1).expand(len(h), -1)], dim=1)


class PhysicalNet(nn.Module):
    """Encoders, standardisers and a readout; the layer slots are filled by `use(bodies)`."""

    def __init__(self, task: Task, n_in: int, n_out: int, response_stats: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(cfg.seed)
        x = task.x_train
        self.input_norm = Standardise(x.mean(0), x.std(0))
        widths = [task.n_features] + [n_out] * (cfg.depth - 1)
        if cfg.encoder == "affine":
            self.encoders = nn.ModuleList(AffineEncoder(n_in, gen) for _ in widths)
        else:
            self.encoders = nn.ModuleList(ConcatEncoder(w, n_in, gen) for w in widths)
        self.norms = nn.ModuleList(Standardise(*response_stats) for _ in range(cfg.depth))
        self.readout = nn.Linear(n_out, task.n_classes)
        self.bodies: list[Callable[[torch.Tensor], torch.Tensor]] = []

    def use(self, bodies: list[Callable[[torch.Tensor], torch.Tensor]]) -> PhysicalNet:
        if len(bodies) != len(self.encoders):
            raise ValueError(f"need {len(self.encoders)} layer bodies, got {len(bodies)}")
        self.bodies = bodies
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_norm(x)
        for encoder, body, norm in zip(self.encoders, self.bodies, self.norms, strict=True):
            h = norm(body(encoder(h)))
        return self.readout(h)


def _twin_stats(twin: TwinSpec) -> tuple[torch.Tensor, torch.Tensor]:
    twins = list(twin.values()) if isinstance(twin, Mapping) else [twin]
    mean = torch.stack([t.y_mean for t in twins]).mean(0)
    std = torch.stack([t.y_std for t in twins]).mean(0)
    return mean, std


def _first_twin(twin: TwinSpec) -> nn.Module:
    return next(iter(twin.values())) if isinstance(twin, Mapping) else twin


def build(trainer: Trainer, task: Task, system: PhysicalSystem, twin: TwinSpec | None, cfg: TrainConfig) -> tuple[PhysicalNet, list, list]:
    """The network for `trainer`, with what fills its layer slots while training and while testing."""
    n_in, n_out = system.n_in, system.n_out
    stats = (torch.zeros(n_out), torch.ones(n_out)) if twin is None else _twin_stats(twin)
    net = PhysicalNet(task, n_in, n_out, stats, cfg)
    if trainer == "digital":
        net.digital = nn.ModuleList(nn.Sequential(nn.Linear(n_in, n_out), nn.Tanh()) for _ in range(cfg.depth))
        # A digital layer's output scale moves as it learns, so it is standardised on the fly.
        net.norms = nn.ModuleList(nn.BatchNorm1d(n_out, affine=False) for _ in range(cfg.depth))
        return net, list(net.digital), list(net.digital)
    physical = PhysicalLayer(system, twin)  # type: ignore[arg-type]
    test_bodies = [physical] * cfg.depth
    if trainer == "in-silico":
        return net, [_first_twin(twin).requires_grad_(False)] * cfg.depth, test_bodies  # type: ignore[arg-type]
    return net, test_bodies, test_bodies


