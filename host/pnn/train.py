"""One epoch loop; every trainer is a step function on it (ignite's `Engine(process_function)`).

The network is `nets.PhysicalNet`; a trainer is a `Step`: what fills the layer slots while training
and testing, and what one batch does (forward, gradient or its estimate, optimizer step). `fit` runs
the epochs for any Step: shuffling, evaluation on the physical system, metric rows, query counts,
checkpoints and resume through a `RunLog`. The trainers (`nets.TRAINERS`) are built by
`pnn.trainers.make_step`:

    digital    a trainable Linear + tanh of the same shape (what a digital net of this size does)
    in-silico  the twin; then evaluated on the physical system
    pat        the physical system forward, the twin backward (PhysicalLayer)
    ...        pipelined PAT, PAT with online twin refinement or a learned twin-error model,
               model-free SPSA and CMA-ES, layer-local learning (see pnn.trainers)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data import Task
from .engine import GradientStep, Result, Step, accuracy, evaluate_net, fit, run_step
from .nets import TRAINERS, PhysicalNet, TrainConfig, Trainer, build
from .pat import TwinSpec
from .system import PhysicalSystem

__all__ = ["TRAINERS", "GradientStep", "PhysicalNet", "Result", "Step", "TrainConfig", "Trainer", "accuracy",
           "build", "evaluate_net", "fit", "run_step", "train"]


def train(
    trainer: Trainer | str,
    task: Task,
    system: PhysicalSystem | None,
    twin: TwinSpec | None,
    cfg: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
    resume: bool = False,
    **options: Any,
) -> Result:
    """Train one network with `trainer`; test accuracy is measured on the physical system (digital: itself).

    Args:
        trainer: one of `TRAINERS`.
        task: the dataset.
        system: the physical system (unused by "digital" except for its shape).
        twin: its twin (or a mapping source id -> twin for a pool); model-free trainers and
            "digital" do without.
        cfg: depth, encoder, epochs, batch size, learning rate, seed.
        run_dir: if given, metrics.jsonl rows and checkpoints/<trainer>.pt are written there.
        resume: continue from run_dir's checkpoint for this trainer (see `fit`).
        options: trainer-specific settings (see pnn.trainers).

    Every metric row holds `queries`: physical samples spent so far (twin data included), counted
    by one `Counting` wrapper around `system`; `eval_queries` are those spent measuring accuracy.
    """
    from .trainers import TWIN_FREE, make_step

    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer '{trainer}'; choose one of {', '.join(TRAINERS)}")
    needs_twin = trainer not in TWIN_FREE
    if system is None or (twin is None and needs_twin):
        raise ValueError(f"trainer '{trainer}' needs a system{' and a twin' if needs_twin else ''}")
    cfg = cfg or TrainConfig()
    return run_step(trainer, lambda counted: make_step(trainer, task, counted, twin, cfg, **options), system,
                    twin if needs_twin else None, cfg, run_dir=run_dir, resume=resume, show_progress=show_progress)
