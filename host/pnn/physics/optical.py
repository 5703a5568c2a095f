"""Broadband second-harmonic generation (simulation only): a pulse shaper, a crystal, a spectrometer.

Model (HARDWARE_NOTES, "Optical SHG"), over N = n_in pulse-shaper bins i = 0..N-1:

    E(w_i)   = A0(w_i) * m_i                    m = drive in [0, 1]: the shaper's amplitude per bin
    E_SH     = ifft(fft(E, L)^2)                the spectral autoconvolution (L >= 2N-1: no wrap-around)
    E_SH(k) *= sinc((k - k_pm) / W)             phase matching sinc(dk L/2) over sum-frequency bin k
    I(k)     = |E_SH(k)|^2 (1 + dP)^2 / I_ref   + readout noise, clipped to [0, 2], quantised; binned to n_out

The spectrometer has N pixels on the central half of the 2N-1 sum-frequency bins (k = (N-1)//2 ..),
where the SH light is; k_pm = N - 1 (the band centre) and W = 1.2 N.

A0 is a Gaussian spectrum (centre N/2, sigma N/3) with the unit's ripple and residual chirp. I is
normalised by I_ref, the nominal unit's peak for m = 0.5 in every bin, so random uniform drives have a
typical maximum of ~1; the spectrometer saturates at 2 (`full_scale`). Because I ~ |E^2|^2, scaling
the drive by c scales the response by c^4 (the SH field is quadratic in the drive). With
encoding="phase" the shaper writes E = A0 exp(i pi m) instead (the notes' alternative).

Imperfections: dP ~ N(0, multiplicative) per example (pulse-energy jitter, entering squared); drift d
moves the phase-matching centre by d*N pixels (crystal temperature/angle) and shifts the spectrometer
by d*N/2 pixels; unit variation draws A0's centre (+-3% of N), width (+-10%), ripple (up to 5%) and
residual chirp (up to 0.5 rad at the band edge), and the phase-matching centre (+-5% of N) and
width (+-10%).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._base import SimulatedSystem
from ._noise import Noise


class Optical(SimulatedSystem):
    """The SHG layer as a `PhysicalSystem`: shaper amplitudes [B, n_in] in [0, 1] -> SH spectrum [B, n_out].

    Args:
        n_in: pulse-shaper bins (for the paper's vowel net, data and parameters laid side by side).
        n_out: output bins over the n_in spectrometer pixels (default n_in).
        seed, noise: as for every simulated system.
        pm_width: phase-matching sinc width, in units of n_in (first zero at +-pm_width*n_in pixels).
        encoding: "amplitude" (E = A0 m, the default) or "phase" (E = A0 exp(i pi m): the shaper writes
            the drive as spectral phase, so the SH spectrum comes from interference, not a blur).
    """

    full_scale = 2.0

    def __init__(
        self,
        n_in: int = 64,
        n_out: int | None = None,
        *,
        seed: int = 0,
        noise: Noise = Noise(),  # noqa: B008 (frozen dataclass: a shared default is safe)
        pm_width: float = 1.2,
        encoding: str = "amplitude",
    ) -> None:
        if not isinstance(n_in, int) or n_in < 2:
            raise ValueError(f"n_in must be an int >= 2 (shaper bins), got {n_in!r}")
        super().__init__(n_in, n_in if n_out is None else n_out, seed, noise)
        if not (isinstance(pm_width, int | float) and pm_width > 0):
            raise ValueError(f"pm_width must be > 0, got {pm_width!r}")
        if encoding not in ("amplitude", "phase"):
            raise ValueError(f"encoding must be 'amplitude' or 'phase', got {encoding!r}")
        self.pm_width, self.encoding = float(pm_width), encoding
        n = n_in
        rng = np.random.default_rng([self.seed, 0])
        u = rng.uniform(-1.0, 1.0, size=6) * noise.variation  # fixed draw order: one unit per seed
        self.unit = {
            "a0_centre": (n - 1) / 2 + 0.03 * n * u[0],
            "a0_sigma": n / 3.0 * (1 + 0.10 * u[1]),
            "a0_ripple": 0.05 * u[2],
            "chirp_rad": 0.5 * u[3],
            "pm_centre": (n - 1) + 0.05 * n * u[4],
            "pm_width_px": self.pm_width * n * (1 + 0.10 * u[5]),
        }
        self._a0_64 = torch.from_numpy(self._spectrum(**self.unit))
        self._fft_len = 1 << (2 * n - 2).bit_length()  # >= 2N - 1: linear, not circular, convolution
        nominal = {"a0_centre": (n - 1) / 2, "a0_sigma": n / 3.0, "a0_ripple": 0.0, "chirp_rad": 0.0}
        # reference drives: m = 0.5 everywhere (amplitude), or 256 fixed random drives (phase: a flat
        # phase would add up perfectly, far above what data drives give); I_ref = their median peak
        if encoding == "amplitude":
            ref = torch.full((1, n), 0.5, dtype=torch.float64)
        else:
            ref = torch.rand(256, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        ref_field = self._encode(ref, torch.from_numpy(self._spectrum(**nominal)))
        self._pixel0 = (n - 1) // 2  # the spectrometer's N pixels sit on the central half of the 2N - 1 bins
        sinc = torch.sinc((self._pixels(torch.float64) - (n - 1)) / (self.pm_width * n))
        self._i_ref = float((self._shg(ref_field) * sinc).abs().square().amax(dim=1).median())

    def _spectrum(self, a0_centre: float, a0_sigma: float, a0_ripple: float, chirp_rad: float, **_: float) -> np.ndarray:
        """Complex A0 over the shaper bins: Gaussian amplitude, ripple, residual quadratic phase."""
        i = np.arange(self.n_in)
        amp = np.exp(-0.5 * ((i - a0_centre) / a0_sigma) ** 2) * (1 + a0_ripple * np.sin(2 * math.pi * i / 7.3))
        edge = (i - (self.n_in - 1) / 2) / ((self.n_in - 1) / 2)
        return amp * np.exp(1j * chirp_rad * edge**2)

    def _encode(self, drive: torch.Tensor, a0: torch.Tensor) -> torch.Tensor:
        """The shaped field E = A0 m (amplitude) or A0 exp(i pi m) (phase)."""
        cdtype = torch.complex128 if drive.dtype == torch.float64 else torch.complex64
        if self.encoding == "phase":
            return torch.polar(torch.ones_like(drive), math.pi * drive).to(cdtype) * a0.to(cdtype)
        return drive.to(cdtype) * a0.to(cdtype)

    def _pixels(self, dtype: torch.dtype) -> torch.Tensor:
        """Sum-frequency bin index of each spectrometer pixel."""
        return torch.arange(self._pixel0, self._pixel0 + self.n_in, dtype=dtype)

    def _shg(self, field: torch.Tensor) -> torch.Tensor:
        """Spectral autoconvolution of field [B, N] at the spectrometer's pixels -> [B, N] (complex)."""
        full = torch.fft.ifft(torch.fft.fft(field, n=self._fft_len) ** 2)
        return full[:, self._pixel0 : self._pixel0 + self.n_in]

    def _samples(self, drive: torch.Tensor, gain: torch.Tensor | None, drift: torch.Tensor | None) -> torch.Tensor:
        n = self.n_in
        field = self._encode(drive, self._a0_64)
        pixels = self._pixels(drive.dtype)
        centre = torch.tensor(self.unit["pm_centre"], dtype=drive.dtype)
        if drift is not None:
            centre = centre + drift.to(drive.dtype).unsqueeze(1) * n
        sinc = torch.sinc((pixels - centre) / self.unit["pm_width_px"])
        intensity = (self._shg(field) * sinc).abs().square() / self._i_ref
        if gain is not None:
            intensity = intensity * gain.to(drive.dtype).square().unsqueeze(1)
        if drift is not None:
            intensity = _shift_pixels(intensity, drift.to(drive.dtype) * (n / 2))
        return intensity

    def describe(self) -> dict:
        """JSON-serialisable description: settings and this unit's spectrum and phase matching."""
        d = self._base_describe()
        d.update(pm_width=self.pm_width, encoding=self.encoding, pixel0=self._pixel0, unit={k: float(v) for k, v in self.unit.items()})
        return d


def _shift_pixels(y: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Read y [B, P] through a spectrometer displaced by `shift` [B] pixels (linear interpolation, dark outside)."""
    pixels = y.shape[1]
    pos = torch.arange(pixels, dtype=y.dtype) - shift.unsqueeze(1)
    lo = pos.floor()
    frac = pos - lo
    lo = lo.long()
    padded = torch.nn.functional.pad(y, (1, 1))  # index 0 and P+1 are dark
    left = padded.gather(1, (lo + 1).clamp(0, pixels + 1))
    right = padded.gather(1, (lo + 2).clamp(0, pixels + 1))
    return left * (1 - frac) + right * frac
