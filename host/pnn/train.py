"""One harness, three trainers: a digital baseline, in-silico training and physics-aware training (PAT).

The network is `nets.PhysicalNet`; what differs between the trainers is only what runs in the
layer slot while training:

    digital    a trainable Linear + tanh of the same shape (what a digital net of this size does)
    in-silico  the twin; then evaluated on the physical system
    pat        the physical system forward, the twin backward (PhysicalLayer)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .data import Task
from .nets import TRAINERS, PhysicalNet, TrainConfig, Trainer, build
from .pat import TwinSpec
from .progress import progress
from .system import PhysicalSystem

__all__ = ["TRAINERS", "PhysicalNet", "Result", "TrainConfig", "Trainer", "accuracy", "build", "train"]


@dataclass
class Result:
    trainer: Trainer
    test_accuracy: float
    seconds: float
    history: list[dict] = field(default_factory=list)
    net: nn.Module | None = None


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, torch.Tensor]:
    """Accuracy and predictions, in batches, without gradients."""
    with torch.no_grad():
        pred = torch.cat([net(xb).argmax(1) for xb in x.split(batch_size)])
    return float((pred == y).float().mean()), pred



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
    if system is None or (twin is None and trainer not in ("digital", "linear")):
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
