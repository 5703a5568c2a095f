"""The measurement pipeline shared by the simulated systems: check, DAC, physics, readout, bins."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from .._threads import configure as _configure_threads
from ._noise import Noise, NoiseStream, quantise

_configure_threads()  # the library picks torch's thread count (pnn/_threads.py), not only the CLI


def bin_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_in, n_out] float64 averaging matrix: bin i covers samples [i*n_in//n_out, (i+1)*n_in//n_out)."""
    m = np.zeros((n_in, n_out))
    for i in range(n_out):
        lo, hi = i * n_in // n_out, (i + 1) * n_in // n_out
        m[lo:hi, i] = 1.0 / (hi - lo)
    return torch.from_numpy(m)


class SimulatedSystem(ABC):
    """Base of the simulated systems: a `PhysicalSystem` with noise, drift, converters and an exact twin.

    Subclasses implement `_samples(drive, gain, drift) -> [B, n_samples]` (the noiseless readout in
    full-scale units, before clipping), where `gain` and `drift` are per-example float64 tensors or
    None when that effect is off. The readout has `n_samples` pixels (time samples or spectrometer
    pixels) that are averaged into n_out contiguous bins.
    """

    #: readout full scale in response units (the ADC window maps to [0, full_scale])
    full_scale: float = 1.0

    def __init__(self, n_in: int, n_out: int, seed: int, noise: Noise, n_samples: int | None = None) -> None:
        for name, value in (("n_in", n_in), ("n_out", n_out), ("seed", seed)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if n_in < 1:
            raise ValueError(f"n_in must be >= 1, got {n_in}")
        n_samples = n_in if n_samples is None else n_samples
        if not 1 <= n_out <= n_samples:
            raise ValueError(f"n_out must be in 1..{n_samples} (bins average readout samples), got {n_out}")
        if not isinstance(noise, Noise):
            raise ValueError(f"noise must be a pnn.physics.Noise, got {type(noise).__name__}")
        self.n_in, self.n_out, self.seed, self.noise = int(n_in), int(n_out), int(seed), noise
        self._n_samples = n_samples
        self._stream = NoiseStream(noise, self.seed)
        self._bins64 = bin_matrix(n_samples, n_out)
        self._bins: dict[torch.dtype, torch.Tensor] = {}

    def _set_clock(self, sample_rate: float, rate_range: tuple[float, float], rest: float, substeps: int,
                   parts: Any, parts_type: type) -> Any:
        """Check and keep the time-stepped systems' clock settings; returns the nominal parts."""
        lo, hi = rate_range
        if not (isinstance(sample_rate, int | float) and lo <= sample_rate <= hi):
            raise ValueError(f"sample_rate must be a number in {lo:g}..{hi:g} samples/s, got {sample_rate!r}")
        if not (isinstance(rest, int | float) and 0.0 <= rest <= 1.0):
            raise ValueError(f"rest must be a drive level in [0, 1], got {rest!r}")
        if not (isinstance(substeps, int) and 1 <= substeps <= 64):
            raise ValueError(f"substeps must be an int in 1..64, got {substeps!r}")
        if parts is not None and not isinstance(parts, parts_type):
            raise ValueError(f"parts must be a {parts_type.__name__}, got {type(parts).__name__}")
        self.sample_rate, self.rest, self.substeps = float(sample_rate), float(rest), substeps
        return parts or parts_type()

    # -- subclass hooks -------------------------------------------------------------------------
    @abstractmethod
    def _samples(
        self, drive: torch.Tensor, gain: torch.Tensor | None, drift: torch.Tensor | None
    ) -> torch.Tensor: ...

    @abstractmethod
    def describe(self) -> dict: ...

    # -- the public measurement -----------------------------------------------------------------
    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        """Measure the responses [B, n_out] (float32, CPU) to drives [B, n_in]; builds no autograd graph."""
        x = self._check(drive)
        if x.shape[0] == 0:
            return torch.zeros(0, self.n_out)
        with torch.no_grad():
            x = x.detach().to(device="cpu", dtype=torch.float32).clamp(0.0, 1.0)  # the DAC saturates
            x = quantise(x, self.noise.dac_bits)
            batch = x.shape[0]
            gain = self._stream.gains(batch)
            drift = self._stream.drift(batch)
            y = self._samples(x, gain, drift)
            noise = self._stream.readout(tuple(y.shape), self.full_scale)
            if noise is not None:
                y = y + noise
            y = quantise(y.clamp(0.0, self.full_scale), self.noise.adc_bits, self.full_scale)
            return self._bin(y).to(torch.float32)

    def ideal(self, drive: torch.Tensor) -> torch.Tensor:
        """The same physics with no noise, drift or quantisation; differentiable, dtype in = dtype out."""
        x = self._check(drive)
        if not x.is_floating_point():
            x = x.to(torch.float32)
        if x.shape[0] == 0:
            return x.new_zeros(0, self.n_out)
        y = self._samples(x.clamp(0.0, 1.0), None, None)
        return self._bin(y.clamp(0.0, self.full_scale))

    # -- helpers --------------------------------------------------------------------------------
    def _check(self, drive: torch.Tensor) -> torch.Tensor:
        if not isinstance(drive, torch.Tensor):
            if isinstance(drive, np.ndarray):
                drive = torch.from_numpy(drive)
            else:
                raise ValueError(f"drive must be a torch.Tensor of shape [B, {self.n_in}], got {type(drive).__name__}")
        if drive.ndim != 2 or drive.shape[1] != self.n_in:
            raise ValueError(
                f"{type(self).__name__} expects drive of shape [B, {self.n_in}] (B examples x n_in={self.n_in}), "
                f"got {list(drive.shape)}"
            )
        if drive.is_floating_point() and bool(torch.isnan(drive).any()):
            raise ValueError("drive contains NaN")
        return drive

    def _bin(self, y: torch.Tensor) -> torch.Tensor:
        m = self._bins.get(y.dtype)
        if m is None:
            m = self._bins[y.dtype] = self._bins64.to(y.dtype)
        return y @ m

    def _base_describe(self) -> dict:
        return {
            "class": type(self).__name__,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "seed": self.seed,
            "noise": self.noise.asdict(),
            "full_scale": self.full_scale,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_in={self.n_in}, n_out={self.n_out}, seed={self.seed}, noise={self.noise})"
