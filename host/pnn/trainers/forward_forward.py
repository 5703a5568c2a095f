"""Forward-forward on physical layers (Hinton 2022): no twin, no backward pass through the physics.

Each layer is a fixed encoder -> the physical system -> a standardiser -> a trainable digital
Linear + ReLU, whose "goodness" (the mean square of its activity) is trained locally: high for
positive data (the input with its own label embedded), low for negative data (the same input with
a random wrong label). The physics is only ever run forward and never differentiated, so neither
a twin nor a gradient estimate of it is needed: what learns sits after each physical pass.
Between layers the activity is divided by its RMS (Hinton's length normalisation, so a layer
cannot pass its goodness on) and detached (learning stays local).

The label is embedded in the drive: drive = (1 - mix) * encoded input + mix * pattern[label], a
fixed random 0/1 pattern per class spread over every drive sample (an RLC circuit or a crystal
would barely notice Hinton's one-hot in the first pixels). Prediction runs the test batch once per
label (one physical call per layer for all of them) and picks the label with the highest goodness
summed over layers: n_classes x the queries of a one-pass network at evaluation.

Why forward-forward and not PhyLL (Momeni et al., Science 2023) itself: PhyLL shares the recipe
(positive and negative data with the label embedded, a local contrastive objective per physical
layer, forward passes on the physics only, no model of it), but its goodness is a similarity
between samples of a batch, and we could not check its exact objective and inference rule here;
forward-forward's are fully specified and its goodness is per sample, which is what the one loop's
evaluation (logits per row) needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..data import Task
from ..engine import Step
from ..nets import AffineEncoder, LayerSlots, Standardise, TrainConfig
from ..system import PhysicalSystem, measure


class ForwardForwardNet(LayerSlots):
    """(frozen encoder -> physical layer -> BatchNorm -> Linear + ReLU) x depth; logits = goodness per label.

    Has `use(bodies)` like `nets.PhysicalNet`, so the one loop fills its layer slots the same way.
    """

    def __init__(self, task: Task, n_in: int, n_out: int, cfg: TrainConfig, *, mix: float = 0.5) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(cfg.seed)
        self.n_classes, self.mix = task.n_classes, mix
        self.input_norm = Standardise(task.x_train.mean(0), task.x_train.std(0))
        widths = [task.n_features] + [n_in] * (cfg.depth - 1)
        # Upstream of a physical layer nothing can learn without a model of it: the encoders stay as drawn.
        self.encoders = nn.ModuleList(AffineEncoder(n_in, gen).requires_grad_(False) for _ in widths)
        # Exactly half the samples on in every pattern: no label drives the system harder than another
        # (with SHG's drive^4 a label with more ones would win on every input).
        order = torch.rand(task.n_classes, n_in, generator=gen).argsort(1)
        self.register_buffer("patterns", (order < n_in // 2).float())
        self.norms = nn.ModuleList(nn.BatchNorm1d(n_out, affine=False) for _ in widths)
        self.layers = nn.ModuleList(nn.Linear(n_out, n_in) for _ in widths)
        self.bodies: list[Callable[[torch.Tensor], torch.Tensor]] = []

    def n_slots(self) -> int:
        return len(self.layers)

    def activities(self, x: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's activity for inputs x with `labels` embedded; no gradient crosses a layer."""
        h, out = self.input_norm(x), []
        for k, (encoder, body, norm, layer) in enumerate(zip(self.encoders, self.bodies, self.norms, self.layers, strict=True)):
            drive = encoder(h)
            if k == 0:
                drive = (1 - self.mix) * drive + self.mix * self.patterns[labels]
            with torch.no_grad():
                response = body(drive)
            z = torch.relu(layer(norm(response)))
            out.append(z)
            h = z.detach() / z.detach().pow(2).mean(1, keepdim=True).add(1e-6).sqrt()
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Goodness summed over layers for every label: [B, n_classes] (the highest is the prediction)."""
        labels = torch.arange(self.n_classes).repeat_interleave(len(x))
        activities = self.activities(x.repeat(self.n_classes, 1), labels)
        goodness = sum(goodness_of(z) for z in activities)
        return goodness.view(self.n_classes, len(x)).T  # type: ignore[union-attr]


def goodness_of(z: torch.Tensor) -> torch.Tensor:
    """Mean square activity per row."""
    return z.pow(2).mean(1)


class ForwardForwardStep(Step):
    """One step: the batch with its labels (positive) and with random wrong labels (negative), in one pass.

    Loss per layer: softplus(threshold - G+) + softplus(G- - threshold), summed (each term reaches only
    its own layer's parameters). Physical queries per step: 2 x batch x depth. The logits it returns
    hold G+ at the true label and G- at the wrong one, so "train accuracy" is how often the true
    label beats a random wrong one.

    Args:
        threshold: the goodness that separates positive from negative (0.5 and mix 0.5 learnt fastest
            on the optical vowels of bench/trainers.py among 2.0 / 0.5 and 0.3 / 0.5).
        mix: the weight of the label pattern in the first drive.
        lr: Adam's learning rate (default: the config's).
    """

    def __init__(self, task: Task, system: PhysicalSystem, cfg: TrainConfig, *, threshold: float = 0.5,
                 mix: float = 0.5, lr: float | None = None) -> None:
        net = ForwardForwardNet(task, system.n_in, system.n_out, cfg, mix=mix)
        bodies = [lambda drive: measure(system, drive)[0]] * cfg.depth
        super().__init__(task, net, bodies, bodies, cfg, lr=lr)
        self.threshold = threshold
        self.gen = torch.Generator().manual_seed(cfg.seed + 5)

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        x, y = self.task.x_train[idx], self.task.y_train[idx]
        n = self.task.n_classes
        wrong = (y + torch.randint(1, n, y.shape, generator=self.gen)) % n
        activities = self.net.activities(torch.cat([x, x]), torch.cat([y, wrong]))  # type: ignore[operator]
        loss = torch.zeros(())
        for z in activities:
            g_pos, g_neg = goodness_of(z).split(len(idx))
            loss = loss + (nn.functional.softplus(self.threshold - g_pos) + nn.functional.softplus(g_neg - self.threshold)).mean()
        self.apply(loss)
        with torch.no_grad():
            total = sum(goodness_of(z) for z in activities)
            logits = torch.full((len(idx), n), -torch.inf)
            logits[torch.arange(len(idx)), wrong] = total[len(idx):]  # type: ignore[index]
            logits[torch.arange(len(idx)), y] = total[:len(idx)]  # type: ignore[index]
        return loss.item(), logits

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.gen.set_state(state["gen"])
