"""Every trainer of `nets.TRAINERS` as a `pnn.train.Step` on the one epoch loop, by name.

    digital, linear, in-silico, pat   backpropagation through what `nets.build` puts in the layer slots
    linear-unclipped            (as linear, also without the encoders' clip: an affine net)
    pat-pipelined               PAT with the hardware one batch ahead (pnn.pipeline)
    pat-refine                  PAT whose twin is refined online from the pairs training measures
    pat-dat                     PAT with a learned twin-error model fitted online (DAT-style)
    spsa, pepg, cma-es          model-free: the physics is never differentiated, not even via a twin
    local                       layer-local learning: no gradient crosses a physical layer
    forward-forward             local goodness learning after each physical pass (Hinton 2022): no twin

All measure through one `count.Counting` view of the system, so every row's `queries` are counted
the same way.
"""

from __future__ import annotations

from typing import Any

from ..data import Task
from ..engine import GradientStep, Step
from ..nets import TrainConfig, build
from ..pat import TwinSpec
from ..system import PhysicalSystem

TWIN_FREE = frozenset({"digital", "linear", "linear-unclipped", "spsa", "pepg", "cma-es", "forward-forward"})
"""Trainers that need no twin (every other one does)."""


def make_step(name: str, task: Task, system: PhysicalSystem, twin: TwinSpec | None, cfg: TrainConfig,
              **options: Any) -> Step:
    """The Step for trainer `name`; `options` are its own settings (see each Step's class)."""
    from ..pipeline import PipelineConfig, PipelinedStep

    if name == "pat-pipelined":
        return PipelinedStep(task, system, twin, cfg, PipelineConfig(**options))  # type: ignore[arg-type]
    if name == "pat-refine":
        return PipelinedStep(task, system, twin, cfg, PipelineConfig(**{"pipeline": 0, "refine_every": 5, **options}))  # type: ignore[arg-type]
    if name == "pat-dat":
        from .dat import corrected

        pcfg = PipelineConfig(**{"pipeline": 0, "refine_every": 5, "refine_lr": 1e-3, **options})
        return PipelinedStep(task, system, corrected(twin, cfg.seed + 4), cfg, pcfg)  # type: ignore[arg-type]
    if name in ("spsa", "pepg", "cma-es"):
        from .model_free import CMAStep, PEPGStep, SPSAStep

        return {"spsa": SPSAStep, "pepg": PEPGStep, "cma-es": CMAStep}[name](task, system, cfg, **options)
    if name == "forward-forward":
        from .forward_forward import ForwardForwardStep

        return ForwardForwardStep(task, system, cfg, **options)
    if name == "local":
        from .local import LocalStep

        return LocalStep(task, system, twin, cfg)  # type: ignore[arg-type]
    if options:
        raise ValueError(f"trainer '{name}' takes no options; got {', '.join(options)}")
    net, train_bodies, test_bodies = build(name, task, system, twin, cfg)  # type: ignore[arg-type]
    return GradientStep(task, net, train_bodies, test_bodies, cfg)
