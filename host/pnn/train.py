"""One harness, three trainers: a digital baseline, in-silico training and physics-aware training (PAT).

The network (after the paper): input -> encoder -> physical layer -> (standardise -> encoder ->
physical layer) x (depth - 1) -> standardise -> linear readout. Encoders make the layer's drive:
`affine` is the element-wise `clip(a*h + b, 0, 1)` of the electronic and mechanical nets, `concat`
is the SHG net's `[h, theta]` with trainable theta. What differs between the trainers is only what
runs in the layer slot while training:

    digital    a trainable Linear + tanh of the same shape (what a digital net of this size does)
    in-silico  the twin; then evaluated on the physical system
    pat        the physical system forward, the twin backward (PhysicalLayer)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .data import Task
from .pat import PhysicalLayer, TwinSpec
from .progress import progress
from .system import PhysicalSystem

Trainer = Literal["digital", "in-silico", "pat"]
TRAINERS: tuple[Trainer, ...] = ("digital", "in-silico", "pat")


@dataclass
class TrainConfig:
    """What to train and how; every field has a sensible default for the digits task."""

    depth: int = 2
    encoder: Literal["affine", "concat"] = "affine"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.02
    seed: int = 0


@dataclass
class Result:
    trainer: Trainer
    test_accuracy: float
    seconds: float
    history: list[dict] = field(default_factory=list)
    net: nn.Module | None = None


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
        raise ValueError(f"an input of {n} values cannot fill a drive of {width} samples; use a multiple of {n}")
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
            raise ValueError(f"concat needs a drive wider than the data ({n_data}); the system takes {n_in}")
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


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, torch.Tensor]:
    """Accuracy and predictions, in batches, without gradients."""
    with torch.no_grad():
        pred = torch.cat([net(xb).argmax(1) for xb in x.split(batch_size)])
    return float((pred == y).float().mean()), pred


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


def train(
    trainer: Trainer,
    task: Task,
    system: PhysicalSystem | None,
    twin: TwinSpec | None,
    cfg: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
) -> Result:
    """Train one network with `trainer`; test accuracy is measured on the physical system (digital: itself).

    Args:
        trainer: "digital", "in-silico" or "pat".
        task: the dataset.
        system: the physical system (unused by "digital" except for its shape).
        twin: its twin (or a mapping source id -> twin for a pool); unused by "digital".
        cfg: depth, encoder, epochs, batch size, learning rate, seed.
        run_dir: if given, metrics.jsonl lines and checkpoints/<trainer>.pt are written there.
    """
    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer '{trainer}'; choose one of {', '.join(TRAINERS)}")
    if system is None or (twin is None and trainer != "digital"):
        raise ValueError(f"trainer '{trainer}' needs a system{'' if trainer == 'digital' else ' and a twin'}")
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    net, train_bodies, test_bodies = build(trainer, task, system, twin, cfg)
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(task.x_train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    metrics_file = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        metrics_file = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - closed below
    result = Result(trainer, math.nan, 0.0, net=net)
    start = time.perf_counter()
    bar = progress(range(cfg.epochs), f"training {trainer}", show=show_progress)
    try:
        for epoch in bar:
            net.use(train_bodies).train()
            total_loss, correct, seen, epoch_start = 0.0, 0, 0, time.perf_counter()
            for idx in torch.randperm(len(task.x_train), generator=gen).split(cfg.batch_size):
                logits = net(task.x_train[idx])
                loss = nn.functional.cross_entropy(logits, task.y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total_loss += loss.item() * len(idx)
                correct += int((logits.argmax(1) == task.y_train[idx]).sum())
                seen += len(idx)
            net.use(test_bodies).eval()
            test_acc, _ = accuracy(net, task.x_test, task.y_test)
            row = {
                "trainer": trainer,
                "epoch": epoch + 1,
                "loss": total_loss / seen,
                "train_accuracy": correct / seen,
                "test_accuracy": test_acc,
                "samples_per_s": seen * cfg.depth / (time.perf_counter() - epoch_start),
                "seconds": time.perf_counter() - start,
            }
            result.history.append(row)
            bar.note(loss=row["loss"], test_acc=test_acc)
            if metrics_file is not None:
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                torch.save({"config": asdict(cfg), "epoch": epoch + 1, "state_dict": net.state_dict()},
                           run_dir / "checkpoints" / f"{trainer}.pt")  # type: ignore[operator]
    finally:
        if metrics_file is not None:
            metrics_file.close()
    result.test_accuracy = result.history[-1]["test_accuracy"] if result.history else math.nan
    result.seconds = time.perf_counter() - start
    return result
