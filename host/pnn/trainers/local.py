"""Layer-local learning: each physical layer learns from its own loss; no gradient crosses a layer.

After physical local learning (PhyLL, Momeni et al., Science 2023) and forward-forward: the network
is not trained end to end. Each physical layer's standardised response feeds a linear probe of
its own (the last layer's is the readout), and the layer's encoder learns from that probe's
cross-entropy only, through that one layer's twin (PAT, one layer deep); the input a layer
receives is detached, so a twin's error never compounds through later layers. The probes of
the hidden layers are training aids: prediction uses the readout alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import Task
from ..nets import TrainConfig, build
from ..pat import TwinSpec
from ..system import PhysicalSystem
from ..train import Step


class LocalStep(Step):
    """Sum of per-layer local losses; hooks cut the graph at each layer's input and collect its features."""

    def __init__(self, task: Task, system: PhysicalSystem, twin: TwinSpec, cfg: TrainConfig) -> None:
        net, train_bodies, test_bodies = build("pat", task, system, twin, cfg)
        self.probes = nn.ModuleList(nn.Linear(net.readout.in_features, task.n_classes) for _ in net.encoders[1:])
        self.features: list[torch.Tensor] = []
        # A layer begins at its digital mix (if the net has them) or else at its encoder.
        for entry in (net.mixes if hasattr(net, "mixes") else net.encoders)[1:]:
            entry.register_forward_pre_hook(lambda module, args: tuple(a.detach() for a in args))
        for norm in net.norms[:-1]:
            norm.register_forward_hook(self._keep)
        super().__init__(task, net, train_bodies, test_bodies, cfg,
                         params=[*net.parameters(), *self.probes.parameters()])

    def _keep(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if module.training:
            self.features.append(output)

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.features.clear()
        y = self.task.y_train[idx]
        logits = self.net(self.task.x_train[idx])
        loss = nn.functional.cross_entropy(logits, y)
        local = sum(nn.functional.cross_entropy(p(h), y) for p, h in zip(self.probes, self.features, strict=True))
        self.apply(loss + local)
        self.features.clear()
        return loss.item(), logits

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "probes": self.probes.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.probes.load_state_dict(state["probes"])
