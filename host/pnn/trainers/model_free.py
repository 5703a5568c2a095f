"""Model-free trainers: the physics is only ever run forward, never differentiated (no twin at all).

The parameters that reach the loss only through a physical layer (encoders, and anything else
upstream of the physics) learn from loss differences between perturbed copies of the network, the
way a microcontroller rig can afford: SPSA and PEPG need two passes per step whatever the parameter
count; CMA-ES (the `cma` package, diagonal covariance) one pass per population member. The readout sees
the measured responses directly, so it learns from its exact gradient on those same passes.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..data import Task
from ..engine import Step
from ..nets import TrainConfig, build
from ..system import PhysicalSystem, measure


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

    def symmetric(self, theta: torch.Tensor, deltas: list[torch.Tensor], idx: torch.Tensor
                  ) -> tuple[list[tuple[float, float]], list[torch.Tensor], torch.Tensor]:
        """The batch measured at theta + delta and theta - delta for each delta (SPSA's and PEPG's passes).

        Returns the (L+, L-) of each delta, the readout gradient averaged over every pass, and the
        logits of the first pass; the upstream parameters are back at theta afterwards.
        """
        losses, readout, logits = [], None, None
        for delta in deltas:
            (plus, first, g_plus), (minus, _, g_minus) = (self.loss_at(theta + s * delta, idx) for s in (1, -1))
            logits = first if logits is None else logits
            pair = [(a + b) / (2 * len(deltas)) for a, b in zip(g_plus, g_minus, strict=True)]
            readout = pair if readout is None else [r + q for r, q in zip(readout, pair, strict=True)]
            losses.append((float(plus), float(minus)))
        vector_to_parameters(theta, self.upstream)
        return losses, readout, logits  # type: ignore[return-value]

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
        directions = [torch.randint(0, 2, theta.shape, generator=self.gen).float() * 2 - 1
                      for _ in range(self.perturbations)]
        losses, readout, logits = self.symmetric(theta, [self.c * d for d in directions], idx)
        grad = sum((plus - minus) / (2 * self.c) * d for (plus, minus), d in zip(losses, directions, strict=True))
        self.apply_grads(grad / self.perturbations, readout)  # type: ignore[operator]
        return sum(a + b for a, b in losses) / (2 * len(losses)), logits


class PEPGStep(_ModelFree):
    """Parameter-exploring policy gradients (Sehnke et al., Neural Networks 23, 551 (2010)), symmetric sampling.

    The upstream parameters are the mean mu of a Gaussian with one sigma per parameter. Each step
    draws `pairs` perturbations eps ~ N(0, sigma^2) and measures the batch at mu + eps and mu - eps.
    Reward = -loss; the best reward is known (cross-entropy >= 0, so m = 0), which fixes the paper's
    reward normalisation:

        r_T = (r+ - r-) / (2m - r+ - r-) = (L- - L+) / (L+ + L-)
        r_S = ((r+ + r-) / 2 - b) / (m - b) = (b_L - (L+ + L-) / 2) / b_L      (b_L: moving-average loss)
        mu    <- Adam on  -mean(r_T eps)
        sigma <- sigma + alpha_sigma * mean(r_S (eps^2 - sigma^2) / sigma)

    mu takes Adam steps (as in estool's PEPG) rather than the paper's plain ascent so that this row
    and SPSA's differ only in the gradient estimate, not the optimizer. Own implementation: nevergrad
    has no PEPG, and the update is a few lines. Physical queries per step: 2 x pairs x batch x depth.

    Args:
        sigma: the initial exploration width of every parameter.
        alpha_sigma: sigma's learning rate (the paper's 0.1 default).
        pairs: symmetric pairs per step.
        baseline_decay: weight of the old value in the moving-average loss baseline.
    """

    def __init__(self, task: Task, system: PhysicalSystem, cfg: TrainConfig, *, sigma: float = 0.03,
                 alpha_sigma: float = 0.1, pairs: int = 1, baseline_decay: float = 0.9, lr: float | None = None,
                 probe: int = 256) -> None:
        super().__init__(task, system, cfg, probe=probe, lr=lr)
        self.sigma = torch.full_like(parameters_to_vector(self.upstream), sigma)
        self.sigma_range = (sigma / 20, sigma * 5)  # keeps exploration alive and bounded over a long run
        self.alpha_sigma, self.pairs, self.decay = alpha_sigma, pairs, baseline_decay
        self.baseline = math.nan  # the moving-average batch loss; set by the first step

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        mu = parameters_to_vector(self.upstream)
        eps = [torch.randn(mu.shape, generator=self.gen) * self.sigma for _ in range(self.pairs)]
        losses, readout, logits = self.symmetric(mu, eps, idx)
        mean_loss = sum(a + b for a, b in losses) / (2 * len(losses))
        baseline = mean_loss if math.isnan(self.baseline) else self.baseline
        grad, sigma_change = torch.zeros_like(mu), torch.zeros_like(mu)
        for (plus, minus), e in zip(losses, eps, strict=True):
            r_t = (minus - plus) / max(plus + minus, 1e-12)
            r_s = (baseline - (plus + minus) / 2) / max(baseline, 1e-12)
            grad -= r_t * e / self.pairs
            sigma_change += r_s * (e**2 - self.sigma**2) / self.sigma / self.pairs
        self.baseline = mean_loss if math.isnan(self.baseline) else self.decay * self.baseline + (1 - self.decay) * mean_loss
        # At most a 20% change a step: one lucky batch must not collapse or blow up the exploration.
        step = (self.alpha_sigma * sigma_change).clamp(-0.2 * self.sigma, 0.2 * self.sigma)
        self.sigma = (self.sigma + step).clamp(*self.sigma_range)
        self.apply_grads(grad, readout)
        return mean_loss, logits

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "sigma": self.sigma, "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.sigma, self.baseline = state["sigma"], state["baseline"]


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
