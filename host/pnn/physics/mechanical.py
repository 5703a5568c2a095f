"""The hobbyist mechanical layer: a speaker driving a small plate, heard by an electret microphone.

Model (HARDWARE_NOTES, "A hobbyist mechanical layer"), in normalised units (force F ~ 1 at full drive,
mode displacement q_k = phi_k F when static):

    u = 2 * drive - 1                                   (the coupling cap centres the DAC at midscale)
    tau dF/dt = s * tanh(1.5 u) - F                     (amplifier + voice coil, corner 1.5 kHz)
    q_k'' + 2 zeta w_k q_k' + w_k^2 [q_k + alpha_k q_k^3 + kappa q_k sum_j q_j^2] = w_k^2 phi_k F
    p = sum_k c_k q_k'' / w_ref^2                       (microphone, w_ref = 2 pi 1 kHz)
    response = 0.5 + mic_gain * HP_60Hz(p)              (MAX4466 output at Vcc/2 -> ADC full-scale fraction)

Four plate modes (310, 740, 1230, 1890 Hz, zeta = 0.02, Q = 25: they ring for ~25 ms, far longer than an
example, so every sample mixes the whole past drive). The drive is a ZOH DAC at `sample_rate`; the
linear part (F and the modes) is propagated exactly per sub-step (matrix exponential) and the weak
cubic stiffness enters as a first-order-hold input with a predictor-corrector (exponential integrator,
2nd order), so the scheme is stable and accurate at the mode frequencies. Each example starts from rest
(DAC at `rest`, plate still), and ADC sample n is taken at the end of tick n. The response is the ADC
full-scale fraction in [0, 1] (clipped: loud drives do clip the ADC, as on a real board).

Imperfections: gain jitter scales the amplifier drive s (PAM8403 supply ripple); drift d moves every
mode frequency by a factor (1 + d) (temperature); unit variation draws mode frequencies +-1.5%,
zeta +-10%, the mode shapes phi and mic weights c +-10%, alpha and kappa +-20%, mic gain +-10%.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import expm

from ._base import SimulatedSystem
from ._noise import Noise, tolerance

W_REF = 2 * math.pi * 1000.0
_DW = 1e-4  # relative step for d/d(frequency) sensitivities used by drift


@dataclass(frozen=True)
class MechanicalParts:
    """Plate, speaker and microphone constants (normalised units, see the module docstring)."""

    freqs_hz: tuple[float, ...] = (310.0, 740.0, 1230.0, 1890.0)
    zeta: float = 0.02
    phi: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35)
    mic: tuple[float, ...] = (1.0, -0.8, 0.6, -0.45)
    alpha: tuple[float, ...] = (0.06, 0.05, 0.05, 0.04)
    kappa: float = 0.03
    speaker_gain: float = 1.0
    speaker_corner_hz: float = 1500.0
    mic_gain: float = 0.24
    highpass_hz: float = 60.0

    def __post_init__(self) -> None:
        n = len(self.freqs_hz)
        if n < 1 or any(len(getattr(self, f)) != n for f in ("phi", "mic", "alpha")):
            raise ValueError("MechanicalParts: freqs_hz, phi, mic and alpha need one entry per mode")
        if min(self.freqs_hz) <= 0 or self.zeta <= 0 or self.speaker_corner_hz <= 0 or self.highpass_hz <= 0:
            raise ValueError("MechanicalParts: frequencies and zeta must be > 0")

    def asdict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def vary(self, rng: np.random.Generator, variation: float) -> MechanicalParts:
        """One unit: every constant drawn within its tolerance (scaled by `variation`), in a fixed order."""

        def each(values: tuple[float, ...], tol: float) -> tuple[float, ...]:
            return tuple(tolerance(rng, v, tol, variation) for v in values)

        return MechanicalParts(
            freqs_hz=each(self.freqs_hz, 0.015),
            zeta=tolerance(rng, self.zeta, 0.10, variation),
            phi=each(self.phi, 0.10),
            mic=each(self.mic, 0.10),
            alpha=each(self.alpha, 0.20),
            kappa=tolerance(rng, self.kappa, 0.20, variation),
            speaker_gain=self.speaker_gain,
            speaker_corner_hz=self.speaker_corner_hz,
            mic_gain=tolerance(rng, self.mic_gain, 0.10, variation),
            highpass_hz=self.highpass_hz,
        )


def _propagators(p: MechanicalParts, h: float, scale: float = 1.0) -> list[np.ndarray]:
    """Exact step-h matrices for the state x = [F, q_1..q_m, v_1..v_m] (row-vector convention).

    Returns [P (x -> x), gw (speaker input, ZOH), G0 (cubic input, ZOH), G1 (cubic input, ramp part)],
    with every mode frequency multiplied by `scale`.
    """
    m = len(p.freqs_hz)
    w = 2 * math.pi * np.asarray(p.freqs_hz) * scale
    phi = np.asarray(p.phi)
    n = 1 + 2 * m
    a = np.zeros((n, n))
    tau = 1.0 / (2 * math.pi * p.speaker_corner_hz)
    a[0, 0] = -1.0 / tau
    a[1 : 1 + m, 1 + m :] = np.eye(m)
    a[1 + m :, 1 : 1 + m] = -np.diag(w**2)
    a[1 + m :, 1 + m :] = -np.diag(2 * p.zeta * w)
    a[1 + m :, 0] = w**2 * phi
    b = np.zeros((n, 1 + m))
    b[0, 0] = 1.0 / tau  # speaker drive s*tanh(1.5u)
    b[1 + m :, 1:] = np.diag(w**2)  # cubic restoring force, as an input
    k = b.shape[1]
    # Van Loan: exp([[A, B, 0], [0, 0, I/h], [0, 0, 0]] h) holds Phi, int e^{As} B and the ramp response
    big = np.zeros((n + 2 * k, n + 2 * k))
    big[:n, :n] = a
    big[:n, n : n + k] = b
    big[n : n + k, n + k :] = np.eye(k) / h
    e = expm(big * h)
    phi_h, g0, g1 = e[:n, :n], e[:n, n : n + k], e[:n, n + k :]
    return [phi_h.T, g0[:, 0], g0[:, 1:].T, g1[:, 1:].T]


def _lin(x: torch.Tensor, m: tuple[torch.Tensor, torch.Tensor | None], d: torch.Tensor | None) -> torch.Tensor:
    """x @ M(d) with M linearised in the per-example drift d."""
    y = x @ m[0]
    return y if d is None or m[1] is None else y + d.unsqueeze(1) * (x @ m[1])


class Mechanical(SimulatedSystem):
    """The plate layer as a `PhysicalSystem`: drive [B, n_in] in [0, 1] -> ADC fractions [B, n_out].

    Args:
        n_in, n_out, seed, noise: as for every simulated system (n_out defaults to n_in).
        sample_rate: DAC/ADC tick rate (samples/s).
        rest: DAC level held before each example (0.5 = midscale: no force).
        parts: nominal plate/speaker/mic constants (the unit's are drawn around them).
        substeps: integrator sub-steps per tick.
    """

    full_scale = 1.0

    def __init__(
        self,
        n_in: int = 64,
        n_out: int | None = None,
        *,
        seed: int = 0,
        noise: Noise = Noise(),  # noqa: B008 (frozen dataclass: a shared default is safe)
        sample_rate: float = 16e3,
        rest: float = 0.5,
        parts: MechanicalParts | None = None,
        substeps: int = 2,
    ) -> None:
        super().__init__(n_in, n_in if n_out is None else n_out, seed, noise)
        self.nominal_parts = self._set_clock(sample_rate, (1e3, 1e6), rest, substeps, parts, MechanicalParts)
        self.parts = self.nominal_parts.vary(np.random.default_rng([self.seed, 0]), noise.variation)
        p = self.parts
        h = 1.0 / (self.sample_rate * substeps)
        mats = _propagators(p, h)
        up, down = _propagators(p, h, 1 + _DW), _propagators(p, h, 1 - _DW)
        # each matrix with its first-order sensitivity to a relative shift of every mode frequency
        self._mats64 = [
            (torch.from_numpy(m0), torch.from_numpy((u - d) / (2 * _DW))) for m0, u, d in zip(mats, up, down, strict=True)
        ]
        self._mats: dict[torch.dtype, list] = {}
        self._consts: dict[tuple[str, torch.dtype], torch.Tensor] = {}
        self._m = len(p.freqs_hz)
        self._w = 2 * math.pi * np.asarray(p.freqs_hz)
        # rest: the static deflection under the rest force (the microphone hears nothing of it)
        f0 = p.speaker_gain * math.tanh(1.5 * (2 * self.rest - 1))
        self._x0 = np.concatenate([[f0], self._static_deflection(f0), np.zeros(self._m)])
        self._hp_a = 1.0 / (1.0 + 2 * math.pi * p.highpass_hz / self.sample_rate)  # RC high-pass, one pole
        self._hp64: torch.Tensor | None = None

    def _static_deflection(self, force: float) -> np.ndarray:
        """Solve q + alpha q^3 + kappa q sum q^2 = phi F (fixed point: the cubic terms are small)."""
        p = self.parts
        q = np.asarray(p.phi) * force
        for _ in range(100):
            q = np.asarray(p.phi) * force - np.asarray(p.alpha) * q**3 - p.kappa * q * np.sum(q**2)
        return q

    def _matrices(self, dtype: torch.dtype) -> list:
        mats = self._mats.get(dtype)
        if mats is None:
            mats = self._mats[dtype] = [(m0.to(dtype), m1.to(dtype)) for m0, m1 in self._mats64]
        return mats

    def _const(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """A per-mode constant of the unit (alpha, phi, mic, w) as a cached tensor."""
        key = (name, dtype)
        t = self._consts.get(key)
        if t is None:
            values = self._w if name == "w" else getattr(self.parts, name)
            t = self._consts[key] = torch.tensor(np.asarray(values), dtype=dtype)
        return t

    def _cubic(self, q: torch.Tensor) -> torch.Tensor:
        """The cubic restoring terms -(alpha q^3 + kappa q sum q^2), as an input to the modes."""
        q2 = q * q
        return -q * (self._const("alpha", q.dtype) * q2 + self.parts.kappa * q2.sum(1, keepdim=True))

    def _samples(self, drive: torch.Tensor, gain: torch.Tensor | None, drift: torch.Tensor | None) -> torch.Tensor:
        dtype, (batch, ticks), m = drive.dtype, drive.shape, self._m
        p_mat, gw, g0, g1 = self._matrices(dtype)
        d = None if drift is None else drift.to(dtype)
        force = self.parts.speaker_gain * torch.tanh(1.5 * (2 * drive - 1))
        if gain is not None:
            force = force * gain.to(dtype).unsqueeze(1)
        x = torch.from_numpy(self._x0).to(dtype).expand(batch, -1)
        cubic = self._cubic(x[:, 1 : 1 + m])
        ends = []
        for n in range(ticks):
            w_n = force[:, n : n + 1]
            for _ in range(self.substeps):
                x_p = _lin(x, p_mat, d) + w_n * (gw[0] if d is None else gw[0] + d.unsqueeze(1) * gw[1])
                x_p = x_p + _lin(cubic, g0, d)
                new_cubic = self._cubic(x_p[:, 1 : 1 + m])
                x = x_p + _lin(new_cubic - cubic, g1, d)
                cubic = self._cubic(x[:, 1 : 1 + m])
            ends.append(x)
        return 0.5 + self.parts.mic_gain * self._highpass(self._microphone(torch.stack(ends, dim=1), d))

    def _microphone(self, states: torch.Tensor, d: torch.Tensor | None) -> torch.Tensor:
        """p = sum c_k q_k'' / w_ref^2 from the states at the tick ends [B, T, 1 + 2m] -> [B, T]."""
        m = self._m
        w = self._const("w", states.dtype)
        if d is not None:
            w = w * (1 + d.view(-1, 1, 1))
        f, q, v = states[..., :1], states[..., 1 : 1 + m], states[..., 1 + m :]
        phi, alpha, mic = (self._const(k, states.dtype) for k in ("phi", "alpha", "mic"))
        stiff = q * (1 + alpha * q * q + self.parts.kappa * (q * q).sum(-1, keepdim=True))
        acc = -2 * self.parts.zeta * w * v - w * w * (stiff - phi * f)
        return (acc * mic).sum(-1) / W_REF**2

    def _highpass(self, p: torch.Tensor) -> torch.Tensor:
        """60 Hz one-pole high-pass y_n = a (y_{n-1} + p_n - p_{n-1}), from rest (p_{-1} = 0), as a matmul."""
        ticks = p.shape[1]
        if self._hp64 is None or self._hp64.shape[0] != ticks:
            a = self._hp_a
            j = np.arange(ticks)
            lag = j[None, :] - j[:, None]  # [m, n] = n - m
            taps = np.where(lag == 0, a, (a - 1) * a ** np.maximum(lag, 0))
            self._hp64 = torch.from_numpy(np.where(lag >= 0, taps, 0.0))
        return p @ self._hp64.to(p.dtype)

    def describe(self) -> dict:
        """JSON-serialisable description: settings, this unit's constants and the nominal ones."""
        d = self._base_describe()
        d.update(
            sample_rate=self.sample_rate,
            rest=self.rest,
            substeps=self.substeps,
            parts=self.parts.asdict(),
            nominal_parts=self.nominal_parts.asdict(),
        )
        return d
