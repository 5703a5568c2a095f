"""Twin architectures: a generic MLP (as in the paper), a causal temporal network for time-domain layers,
and a second-harmonic-generation model with learned spectrum and readout for the optical layer."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """A fully connected net with a linear skip path: makes no assumption about the physics."""

    LR = 2e-3  # the fit's peak learning rate (twin.fit) unless one is given

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

    LR = 2e-3

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


SHARPNESS = 4.0
"""Of the SHG twin's pixel saturation, relative to the pixel's full scale: over the last ~quarter of
it the response bends from linear to flat. The spectrometer clips hard (zero gradient past full
scale); a softer bend lets training pull a saturated pixel back, and measured better on the
2-layer vowels net (3 trainings: 95.2% at 4 against 85.7% with a bend over the last ~1/20)."""


class SHG(nn.Module):
    """For a pulse shaper -> SHG crystal -> spectrometer layer (pnn.physics.optical): the physics, its constants learned.

    The shaped field E = A * m (A: a learned complex spectrum over the n_in shaper bins, m the drive in
    [0, 1]), its spectral autoconvolution (the SH field), |.|^2 in every one of the 2 n_in - 1
    sum-frequency bins, then a learned linear map to the n_out outputs: phase matching (a real
    weight per bin on the intensity), the spectrometer's pixels and their binning are all linear in
    the intensity. A generic MLP has to learn the drive^4 law from data and bends its gradient where
    the data is thin; this model has it built in, so its vjp points the true one's way everywhere.
    Each pixel saturates (a smooth min with a learned full scale) before the binning.
    `hidden` adds a small MLP on the drive for what the model lacks; () for none.
    """

    LR = 5e-2  # a few hundred physical constants, not a deep net: a high rate finds them in tens of epochs

    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, ...] | list[int] = ()) -> None:
        super().__init__()
        self.n_bins = 2 * n_in - 1
        self.fft_len = 1 << (2 * n_in - 2).bit_length()  # >= 2 n_in - 1: linear, not circular, convolution
        gen = torch.Generator().manual_seed(0)
        # a flat real spectrum with a little random phase: the fit finds the unit's amplitude and chirp
        self.spectrum = nn.Parameter(torch.stack([torch.ones(n_in), 0.1 * torch.randn(n_in, generator=gen)], dim=1))
        self.pixels = nn.Linear(self.n_bins, n_in)  # phase matching and the spectrometer's n_in pixels
        with torch.no_grad():  # start from pixels on the central n_in sum-frequency bins, where the SH light is
            self.pixels.weight.copy_(torch.eye(self.n_bins)[(n_in - 1) // 2 : (n_in - 1) // 2 + n_in])
            self.pixels.bias.zero_()
        self.full_scale = nn.Parameter(torch.full((n_in,), 2.0))  # where each pixel saturates (learned)
        self.readout = nn.Linear(n_in, n_out)  # the pixels binned to the outputs
        self.correction = MLP(n_in, n_out, hidden) if hidden else None
        self.scale = 1.0 / n_in**2  # |autoconvolution|^2 of n_in unit bins peaks near n_in^2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x + 1) / 2  # Twin centres drives to [-1, 1]; the physics acts on the shaper amplitude
        field = m * torch.view_as_complex(self.spectrum.contiguous())
        sh = torch.fft.ifft(torch.fft.fft(field, n=self.fft_len) ** 2)[:, : self.n_bins]
        pixel = self.pixels(sh.abs().square() * self.scale)
        # a spectrometer pixel clips at full scale: a smooth min keeps a little gradient near it
        fs = self.full_scale.abs().clamp_min(1e-3)
        pixel = fs * (1 - F.softplus(SHARPNESS * (1 - pixel / fs)) / SHARPNESS)
        out = self.readout(pixel)
        return out if self.correction is None else out + self.correction(x)


ARCHITECTURES = {"mlp": MLP, "temporal": Temporal, "shg": SHG}


def _known(kind: str) -> type[nn.Module]:
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown twin kind '{kind}'; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[kind]


def learning_rate(kind: str) -> float:
    """The peak learning rate `twin.fit` uses for `kind` unless told otherwise."""
    return float(_known(kind).LR)  # type: ignore[arg-type]


def build(kind: str, n_in: int, n_out: int, **arch) -> nn.Module:
    _known(kind)
    try:
        return ARCHITECTURES[kind](n_in, n_out, **arch)
    except TypeError as e:
        raise ValueError(f"bad options for a {kind} twin: {e}") from e
