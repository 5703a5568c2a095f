"""Noise settings and the per-unit noise stream (gain jitter, drift, readout noise, converters)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import lfilter

# Drift is an Ornstein-Uhlenbeck walk (mean-reverting so a long run stays physical) smoothed by an
# exponential moving average (so it is smooth from example to example, like a temperature).
_DRIFT_REVERT_EXAMPLES = 20_000.0
_DRIFT_SMOOTH_EXAMPLES = 50.0
_DRIFT_REFERENCE_EXAMPLES = 1_000.0


@dataclass(frozen=True)
class Noise:
    """Switchable imperfections of a simulated physical system.

    Attributes:
        additive: readout noise std, as a fraction of the ADC (or spectrometer) full scale.
        multiplicative: per-example gain jitter std (supply ripple, pulse-energy jitter).
        drift: slow drift of a physical parameter: a smooth random walk moving it by about this
            fraction of its value per 1,000 examples (mean-reverting over ~20,000 examples).
        dac_bits: drive quantisation (None: none).
        adc_bits: readout quantisation (None: none).
        variation: unit-to-unit tolerance scale: 1.0 = realistic part tolerances, 0 = every seed is
            the nominal board.
    """

    additive: float = 0.02
    multiplicative: float = 0.01
    drift: float = 0.01
    dac_bits: int | None = 8
    adc_bits: int | None = 12
    variation: float = 1.0

    def __post_init__(self) -> None:
        for name in ("additive", "multiplicative", "drift", "variation"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
                raise ValueError(f"Noise.{name} must be a finite number >= 0, got {value!r}")
        for name in ("dac_bits", "adc_bits"):
            bits = getattr(self, name)
            if bits is not None and (not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 24):
                raise ValueError(f"Noise.{name} must be None or an int in 1..24, got {bits!r}")

    @classmethod
    def off(cls) -> Noise:
        """The ideal, deterministic system: no noise, no drift, no quantisation, nominal parts."""
        return cls(additive=0.0, multiplicative=0.0, drift=0.0, dac_bits=None, adc_bits=None, variation=0.0)

    def asdict(self) -> dict:
        """JSON-serialisable settings."""
        return dataclasses.asdict(self)


def quantise(x: torch.Tensor, bits: int | None, full_scale: float = 1.0) -> torch.Tensor:
    """Round x in [0, full_scale] to the nearest of 2**bits codes (a converter's transfer function)."""
    if bits is None:
        return x
    levels = float(2**bits - 1)
    return torch.round(x * (levels / full_scale)).clamp(0.0, levels) * (full_scale / levels)


class NoiseStream:
    """The random state of one unit: gain jitter, the drift walk and readout noise, seeded per unit."""

    def __init__(self, noise: Noise, seed: int) -> None:
        self.noise = noise
        # A different stream from the one that drew the unit's parts, but fixed by the same seed.
        self._rng = np.random.default_rng([int(seed), 0x5EED])
        self._walk = 0.0  # OU state
        self._drift = 0.0  # smoothed drift value
        self.examples = 0

    def gains(self, batch: int) -> torch.Tensor | None:
        """Per-example gain factors 1 + N(0, multiplicative), or None when jitter is off."""
        if self.noise.multiplicative == 0:
            return None
        g = 1.0 + self.noise.multiplicative * self._rng.standard_normal(batch)
        return torch.from_numpy(g)

    def drift(self, batch: int) -> torch.Tensor | None:
        """The drift value (a fraction) seen by each of the next `batch` examples, in order."""
        self.examples += batch
        if self.noise.drift == 0 or batch == 0:
            return None
        rho = 1.0 - 1.0 / _DRIFT_REVERT_EXAMPLES
        beta = 1.0 / _DRIFT_SMOOTH_EXAMPLES
        sigma = self.noise.drift / np.sqrt(_DRIFT_REFERENCE_EXAMPLES)
        eps = self._rng.standard_normal(batch)
        walk, _ = lfilter([sigma], [1.0, -rho], eps, zi=[rho * self._walk])
        smooth, _ = lfilter([beta], [1.0, -(1.0 - beta)], walk, zi=[(1.0 - beta) * self._drift])
        self._walk, self._drift = float(walk[-1]), float(smooth[-1])
        return torch.from_numpy(smooth)

    def readout(self, shape: tuple[int, ...], full_scale: float) -> torch.Tensor | None:
        """Additive readout noise in the response's units, or None when off."""
        if self.noise.additive == 0:
            return None
        z = self._rng.standard_normal(shape, dtype=np.float32)
        return torch.from_numpy(z).mul_(self.noise.additive * full_scale)


def tolerance(rng: np.random.Generator, nominal: float, tol: float, variation: float) -> float:
    """A part value drawn uniformly within +-tol (scaled by variation) of nominal."""
    return float(nominal * (1.0 + variation * tol * rng.uniform(-1.0, 1.0)))


def log_spread(rng: np.random.Generator, nominal: float, spread: float, variation: float) -> float:
    """A value drawn log-uniformly within a factor exp(+-spread) (scaled by variation) of nominal."""
    return float(nominal * np.exp(variation * spread * rng.uniform(-1.0, 1.0)))
