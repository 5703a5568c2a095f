"""Twin architectures: a generic MLP (as in the paper) and a causal temporal network for time-domain layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """A fully connected net with a linear skip path: makes no assumption about the physics."""

    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, ...] | list[int] = (256, 256)) -> None:
        super().__init__()
        widths = (n_in, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.body = nn.Sequential(*layers, nn.Linear(widths[-1], n_out))
        self.skip = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def bin_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_in, n_out] averaging matrix: bin i covers samples [i*n_in//n_out, (i+1)*n_in//n_out)."""
    bins = torch.zeros(n_in, n_out)
    for i in range(n_out):
        lo, hi = i * n_in // n_out, (i + 1) * n_in // n_out
        bins[lo:hi, i] = 1.0 / (hi - lo)
    return bins


class Temporal(nn.Module):
    """For drives that are samples in time and responses that are bins of the same samples.

    Causal convolutions (left padding = the system at rest before the example) alternate with
    per-sample nonlinear channel mixing, then the per-sample output is averaged into the bins.
    Weight sharing across time makes it learn a circuit with memory from a few hundred examples,
    where an MLP needs thousands.
    """

    def __init__(self, n_in: int, n_out: int, channels: int = 32, kernel: int = 16) -> None:
        super().__init__()
        if n_out > n_in:
            raise ValueError(f"a temporal twin bins n_in={n_in} samples into n_out={n_out} <= n_in outputs")
        self.kernel = min(kernel, n_in)
        self.conv_in = nn.Conv1d(1, channels, self.kernel)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.conv_mid = nn.Conv1d(channels, channels, self.kernel)
        self.conv_out = nn.Conv1d(channels, 1, 1)
        self.register_buffer("bins", bin_matrix(n_in, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.kernel - 1, 0)
        h = F.silu(self.conv_in(F.pad(x[:, None, :], pad)))
        h = F.silu(self.mix(h))
        h = F.silu(self.conv_mid(F.pad(h, pad)))
        return self.conv_out(h)[:, 0, :] @ self.bins


ARCHITECTURES = {"mlp": MLP, "temporal": Temporal}


def build(kind: str, n_in: int, n_out: int, **arch) -> nn.Module:
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown twin kind '{kind}'; choose one of {', '.join(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[kind](n_in, n_out, **arch)
    except TypeError as e:
        raise ValueError(f"bad options for a {kind} twin: {e}") from e
