"""Model-free trainers: the physics is only ever run forward, never differentiated (no twin at all).

The parameters that reach the loss only through a physical layer (encoders, and anything else
upstream of the physics) learn from loss differences between perturbed copies of the network, the
way a microcontroller rig can afford: SPSA needs two passes per step whatever the parameter count;
CMA-ES (the `cma` package, diagonal covariance) one pass per population member. The readout sees
the measured responses directly, so it learns from its exact gradient on those same passes.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..data import Task
from ..nets import TrainConfig, build
from ..system import PhysicalSystem, measure
from ..train import Step


class _Stats(nn.Module):
    """Response statistics standing in for a twin: what the network's standardisers need, and no model."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("y_mean", mean)
        self.register_buffer("y_std", std.clamp_min(1e-6))

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a model-free trainer has no twin to differentiate")


class _ModelFree(Step):
    """Shared by SPSA and CMA-ES: the network, the split into upstream and readout, one loss pass.

    The standardisers' statistics come from `probe` uniform random drives (counted queries, like a
    twin's data, but a few hundred rather than thousands).
    """

    def __init__(self, task: Task, system: PhysicalSystem, cfg: TrainConfig, *, probe: int = 256,
                 lr: float | None = None) -> None:
        self.gen = torch.Generator().manual_seed(cfg.seed + 2)
        response, _ = measure(system, torch.rand(probe, system.n_in, generator=self.gen))
        net, _, test_bodies = build("pat", task, system, _Stats(response.mean(0), response.std(0)), cfg)
        self.readout = list(net.readout.parameters())
        ids = {id(p) for p in self.readout}
        self.upstream = [p.requires_grad_(False) for p in net.parameters() if p.requires_grad and id(p) not in ids]
        super().__init__(task, net, test_bodies, test_bodies, cfg, params=self.upstream + self.readout, lr=lr)

    def loss_at(self, theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Loss, logits and readout gradient of the network with upstream parameters `theta` on batch `idx`."""
        vector_to_parameters(theta, self.upstream)
        logits = self.net(self.task.x_train[idx])
        loss = nn.functional.cross_entropy(logits, self.task.y_train[idx])
        return loss.detach(), logits.detach(), list(torch.autograd.grad(loss, self.readout))

    def apply_grads(self, upstream: torch.Tensor, readout: list[torch.Tensor]) -> None:
        offset = 0
        for p in self.upstream:
            p.grad = upstream[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        for p, g in zip(self.readout, readout, strict=True):
            p.grad = g
        self.opt.step()
        self.sched.step()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.gen.set_state(state["gen"])


class SPSAStep(_ModelFree):
    """Simultaneous-perturbation stochastic approximation, its gradient estimate fed to Adam.

    Each step draws `perturbations` Rademacher directions d and measures the batch at theta +- c d:
    g = mean over d of (L+ - L-) / 2c * d. Physical queries per step: 2 x perturbations x batch x depth.

    Args:
        c: perturbation size (encoder gains are ~0.25, offsets ~0.5).
        perturbations: directions averaged per step.
        lr: Adam's learning rate (default: the config's).
    """

    def __init__(self, task: Task, system: PhysicalSystem, cfg: TrainConfig, *, c: float = 0.03,
                 perturbations: int = 1, lr: float | None = None, probe: int = 256) -> None:
        super().__init__(task, system, cfg, probe=probe, lr=lr)
        self.c, self.perturbations = c, perturbations

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        theta = parameters_to_vector(self.upstream)
        grad, readout, losses, logits = torch.zeros_like(theta), None, [], None
        for _ in range(self.perturbations):
            d = torch.randint(0, 2, theta.shape, generator=self.gen).float() * 2 - 1
            (plus, logits, g_plus), (minus, _, g_minus) = (self.loss_at(theta + s * self.c * d, idx) for s in (1, -1))
            grad += (plus - minus) / (2 * self.c) * d / self.perturbations
            pair = [(a + b) / (2 * self.perturbations) for a, b in zip(g_plus, g_minus, strict=True)]
            readout = pair if readout is None else [r + q for r, q in zip(readout, pair, strict=True)]
            losses += [float(plus), float(minus)]
        vector_to_parameters(theta, self.upstream)
        self.apply_grads(grad, readout)  # type: ignore[arg-type]
        return sum(losses) / len(losses), logits  # type: ignore[return-value]


class CMAStep(_ModelFree):
    """CMA-ES (`cma`, diagonal covariance: the upstream parameters number hundreds) on each batch's loss.

    Each step asks the strategy for `popsize` candidates, measures the batch with each, tells it
    the losses, and moves the network to the strategy's mean. Physical queries per step:
    popsize x batch x depth. The readout takes Adam steps on its gradient averaged over the candidates.

    Args:
        sigma: the initial step size.
        popsize: candidates per step (cma's default for this many parameters is ~20).
    """

    def __init__(self, task: Task, system: PhysicalSystem, cfg: TrainConfig, *, sigma: float = 0.03,
                 popsize: int = 8, lr: float | None = None, probe: int = 256) -> None:
        import cma

        super().__init__(task, system, cfg, probe=probe, lr=lr)
        theta = parameters_to_vector(self.upstream).double().numpy()
        options = {"popsize": popsize, "seed": cfg.seed + 3, "CMA_diagonal": True, "verbose": -9}
        self.es = cma.CMAEvolutionStrategy(theta, sigma, options)

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        candidates = self.es.ask()
        results = [self.loss_at(torch.as_tensor(x, dtype=torch.float32), idx) for x in candidates]
        losses = [float(loss) for loss, _, _ in results]
        self.es.tell(candidates, losses)
        readout = [torch.stack(g).mean(0) for g in zip(*(r[2] for r in results), strict=True)]
        mean = torch.as_tensor(self.es.mean, dtype=torch.float32)
        vector_to_parameters(mean, self.upstream)
        for p, g in zip(self.readout, readout, strict=True):
            p.grad = g
        self.opt.step()
        self.sched.step()
        return float(np.mean(losses)), results[int(np.argmin(losses))][1]

    def state_dict(self) -> dict[str, Any]:
        # cma draws from numpy's global generator: its state travels with the strategy's.
        return {**super().state_dict(), "cma": pickle.dumps((self.es, np.random.get_state()))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.es, rng = pickle.loads(state["cma"])  # noqa: S301 - our own run folder's checkpoint
        np.random.set_state(rng)
