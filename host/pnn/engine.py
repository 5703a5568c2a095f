"""The one epoch loop (`fit`) and the Step every trainer is (ignite's `Engine(process_function)`).

`fit` runs the epochs for any Step: shuffling, evaluation on the physical system, metric rows, query
counts, checkpoints and resume through a `RunLog`. `pnn.train.train` picks the Step by trainer name;
the trainers themselves live in `pnn.trainers` and build on `Step` from here.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data import Task
from .nets import PhysicalNet, TrainConfig
from .pat import TwinSpec
from .progress import progress, system_status
from .store import RunLog
from .system import PhysicalSystem, as_twins

__all__ = ["GradientStep", "Result", "Step", "accuracy", "evaluate_net", "fit", "run_step", "twin_queries"]


@dataclass
class Result:
    trainer: str
    test_accuracy: float
    seconds: float
    history: list[dict] = field(default_factory=list)
    net: nn.Module | None = None
    predictions: torch.Tensor | None = None  # from the same (last) evaluation as test_accuracy


def evaluate_net(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
                 ) -> tuple[float, torch.Tensor, float]:
    """One evaluation (one measurement on a physical system): accuracy, predictions and mean cross-entropy."""
    with torch.no_grad():
        logits = torch.cat([net(xb) for xb in x.split(batch_size)])
    pred = logits.argmax(1)
    return float((pred == y).float().mean()), pred, float(nn.functional.cross_entropy(logits, y))


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, torch.Tensor]:
    """Accuracy and predictions, in batches, without gradients."""
    acc, pred, _ = evaluate_net(net, x, y, batch_size)
    return acc, pred


class Step:
    """One trainer: a network, its training and testing layer bodies, and what one batch does.

    Subclasses implement `step`; the base holds an Adam optimizer with a cosine schedule over the
    whole run on `params`, and checkpoints both. Override `state_dict` / `load_state_dict` (calling
    the base) for any other state that must survive a resume.
    """

    def __init__(self, task: Task, net: PhysicalNet, train_bodies: list, test_bodies: list, cfg: TrainConfig,
                 params: list[nn.Parameter] | None = None, lr: float | None = None) -> None:
        self.task, self.net, self.cfg = task, net, cfg
        self.train_bodies, self.test_bodies = train_bodies, test_bodies
        params = params if params is not None else [p for p in net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=cfg.lr if lr is None else lr)
        steps = cfg.epochs * math.ceil(len(task.x_train) / cfg.batch_size)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, max(1, steps))

    def start_epoch(self, batches: list[torch.Tensor]) -> None:
        """Called with the epoch's batches (row indices) before its first step."""

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Train on batch k (rows `idx` of the training set); returns its loss and logits."""
        raise NotImplementedError

    def end_epoch(self) -> dict[str, Any]:
        """Extra fields for the epoch's metric row."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "sched": self.sched.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])

    def close(self) -> None:
        """Release threads or files the step holds."""

    def apply(self, loss: torch.Tensor) -> None:
        """Backward, optimizer step, schedule step: what every gradient-based step ends with."""
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()


class GradientStep(Step):
    """Backpropagation through the training bodies: digital, in-silico and PAT (and any build() trainer)."""

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        logits = self.net(self.task.x_train[idx])
        loss = nn.functional.cross_entropy(logits, self.task.y_train[idx])
        self.apply(loss)
        return loss.item(), logits


def twin_queries(twin: TwinSpec | None) -> int:
    """Physical samples the twin(s) were fitted on (what their metadata recorded)."""
    if twin is None:
        return 0
    total = 0
    for t in as_twins(twin).values():
        meta = getattr(t, "metadata", {})
        total += int(meta.get("queries", meta.get("n_samples", 0) * meta.get("repeats", 1)))
    return total


def fit(name: str, step: Step, cfg: TrainConfig, counter: Any = None, *, log: RunLog | None = None,
        resume: bool = False, base_queries: int = 0, show_progress: bool = True) -> Result:
    """The one epoch loop: shuffle, step every batch, evaluate on the system, log a row, checkpoint.

    Args:
        name: the trainer's name (metric rows, checkpoint file).
        step: the trainer.
        counter: a `counting.Counting` system the step measures through (None: nothing counted).
        log: the run folder's RunLog (None: nothing written).
        resume: continue from the log's checkpoint for `name` if there is one (a finished trainer is
            not re-run); the RNG states, optimizer and schedule are restored, so with a deterministic
            system the result is the uninterrupted run's to the bit.
        base_queries: queries spent before training (twin data), added to each row's `queries`.
    """
    task, net = step.task, step.net
    gen = torch.Generator().manual_seed(cfg.seed)
    result = Result(name, math.nan, 0.0, net=net)
    first, seconds0, counted0 = 0, 0.0, {"train": 0, "eval": 0}
    key = f"{name}.seed{cfg.seed}"  # one checkpoint per trainer and seed
    state = log.load(key) if log is not None and resume else None
    if state is not None:
        net.load_state_dict(state["state_dict"])
        step.load_state_dict(state["step"])
        gen.set_state(state["rng"]["shuffle"])
        torch.set_rng_state(state["rng"]["torch"])
        result.history, first, seconds0 = list(state["history"]), state["epoch"], state["seconds"]
        counted0 = dict(state["queries"])
        result.predictions = state.get("predictions")
    if log is not None:
        log.begin(name, cfg.seed, result.history)
    rows = counter.rows if counter is not None else {}
    offset = {p: counted0[p] - rows.get(p, 0) for p in counted0}
    start = time.perf_counter()
    bar = progress(range(first, cfg.epochs), f"training {name}", show=show_progress, initial=first,
                   status=system_status(counter))
    try:
        for epoch in bar:
            net.use(step.train_bodies).train()
            batches = list(torch.randperm(len(task.x_train), generator=gen).split(cfg.batch_size))
            step.start_epoch(batches)
            total_loss, correct, seen, epoch_start = 0.0, 0, 0, time.perf_counter()
            for k, idx in enumerate(batches):
                loss, logits = step.step(k, idx)
                total_loss += loss * len(idx)
                correct += int((logits.argmax(1) == task.y_train[idx]).sum())
                seen += len(idx)
            extra = step.end_epoch()
            train_seconds = time.perf_counter() - epoch_start
            net.use(step.test_bodies).eval()
            with counter.phase("eval") if counter is not None else contextlib.nullcontext():
                test_acc, result.predictions, test_loss = evaluate_net(net, task.x_test, task.y_test)
            done = {p: rows.get(p, 0) + offset[p] for p in offset}
            row = {"trainer": name, "seed": cfg.seed, "epoch": epoch + 1, "loss": total_loss / seen,
                   "test_loss": test_loss, "train_accuracy": correct / seen, "test_accuracy": test_acc, "samples_per_s": seen * cfg.depth / train_seconds,
                   "queries": base_queries + done["train"], "eval_queries": done["eval"],
                   "seconds": seconds0 + time.perf_counter() - start, **extra}
            result.history.append(row)
            bar.note(loss=row["loss"], test_acc=test_acc)
            if log is not None:  # checkpoint first: a kill between the two loses no row (begin restores it)
                log.save(key, {"config": asdict(cfg), "epoch": epoch + 1, "state_dict": net.state_dict(),
                                "finished": epoch + 1 == cfg.epochs, "history": result.history,
                                "step": step.state_dict(), "queries": done, "seconds": row["seconds"],
                                "predictions": result.predictions,
                                "rng": {"shuffle": gen.get_state(), "torch": torch.get_rng_state()}})
                log.append(row)
    finally:
        step.close()
    net.use(step.test_bodies).eval()
    result.test_accuracy = result.history[-1]["test_accuracy"] if result.history else math.nan
    result.seconds = result.history[-1]["seconds"] if result.history else 0.0
    return result


def run_step(name: str, make: Callable[[PhysicalSystem], Step], system: PhysicalSystem, twin: TwinSpec | None,
             cfg: TrainConfig, *, run_dir: str | Path | None = None, resume: bool = False,
             show_progress: bool = True) -> Result:
    """Build a Step on a query-counting view of `system` (seeded) and run it on the one loop.

    `twin` is the twin the step uses (None: none), whose data counts towards the queries.
    """
    from .counting import counting

    counter = counting(system)
    torch.manual_seed(cfg.seed)
    before = counter.rows.get("train", 0)
    step = make(counter)  # what a step measures to set itself up (e.g. response statistics) counts too
    spent = counter.rows.get("train", 0) - before
    log = RunLog(run_dir) if run_dir is not None else None
    return fit(name, step, cfg, counter, log=log, resume=resume, base_queries=twin_queries(twin) + spent,
               show_progress=show_progress)
