"""Small physical systems defined outside the project, to prove pnn works with any PhysicalSystem."""

from __future__ import annotations

import torch


class LeakyTanh:
    """A differentiable toy 'circuit': causal smoothing followed by a saturating nonlinearity."""

    def __init__(self, n: int = 8, gain: float = 2.0, seed: int = 0, n_out: int | None = None) -> None:
        self.n_in, self.n_out = n, n_out or n
        g = torch.Generator().manual_seed(seed)
        self.mix = torch.tril(torch.rand(n, n, generator=g, dtype=torch.float64)) / n * 3 + torch.eye(n, dtype=torch.float64)
        self.gain = gain
        self.calls = 0

    def exact(self, drive: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.gain * (drive.to(self.mix.dtype) @ self.mix.T - 0.8))
        return y.reshape(len(drive), self.n_out, -1).mean(-1).to(drive.dtype)  # bins, like an ADC

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.exact(drive).float()


class Exact(torch.nn.Module):
    """The exact differentiable model of a LeakyTanh, used as a perfect twin."""

    def __init__(self, system: LeakyTanh) -> None:
        super().__init__()
        self.system = system

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return self.system.exact(drive)


class TwoBoards:
    """A pool of two different boards that reports which one measured each row (alternating)."""

    def __init__(self, n: int = 8) -> None:
        self.boards = {"board-a": LeakyTanh(n, gain=2.0, seed=1), "board-b": LeakyTanh(n, gain=0.5, seed=2)}
        self.n_in = self.n_out = n

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        sources = ["board-a" if i % 2 == 0 else "board-b" for i in range(len(drive))]
        rows = [self.boards[s](drive[i : i + 1]) for i, s in enumerate(sources)]
        return torch.cat(rows), sources

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run_with_sources(drive)[0]
