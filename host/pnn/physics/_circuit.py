"""The electronic layer's circuit, discretised: RLC state stepped in torch, static stage, output RC.

See `pnn.physics.electronic` for the circuit and the derivation; this module holds the numbers.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.linalg import expm

from ._bjt import solve_stage
from ._table import HermiteTable

# Tabulated range of node A (V). A resonant tank (Q ~ 3.6) driven inside 0..3.3 V stays within about
# -3.5..6.8 V; the margin covers unit variation and waveform() calls with wider test voltages.
V_MIN, V_MAX, DV = -12.0, 16.0, 2.5e-3
# Temperature drift moves the transistor's VBE: a drift d (fraction) shifts it by d * VBE_REF,
# e.g. d = 0.01 -> 6.5 mV, about 3 K of warming (-2.1 mV/K).
VBE_REF = 0.65
# Relative step for the d/dC1 sensitivities used by drift.
_DC = 1e-4


def _tank_matrices(r: float, l_h: float, c_f: float, h: float) -> np.ndarray:
    """Exact step-h propagators of the R-L-C1 tank, state (iL, vA), inputs u (ZOH) and iB (FOH).

    Returns a length-10 vector: Phi (4, row-major), Gamma0 @ Bu (2), Gamma0 @ Bi (2), Gamma1 @ Bi (2).
    """
    a = np.array([[-r / l_h, -1.0 / l_h], [1.0 / c_f, 0.0]])
    bu = np.array([1.0 / l_h, 0.0])
    bi = np.array([0.0, -1.0 / c_f])  # base current leaves node A
    phi = expm(a * h)
    ainv = np.linalg.inv(a)
    gamma0 = ainv @ (phi - np.eye(2))  # int_0^h e^{As} ds
    gamma1 = ainv @ (gamma0 - h * np.eye(2)) / h  # int_0^h e^{As} (h - s)/h ds: the ramp part of FOH
    return np.concatenate([phi.ravel(), gamma0 @ bu, gamma0 @ bi, gamma1 @ bi])


@functools.lru_cache(maxsize=64)
def _stage_tables(parts) -> tuple[HermiteTable, HermiteTable, HermiteTable]:  # noqa: ANN001 (frozen, hashable)
    """vout(vA), iB(vA) and the OUT time constant tau(vA) for one set of parts (cached per parts).

    OUT obeys Cout dv/dt = (vth - v)/(Rth + Rout) - v/Rdiv with the collector pin's Thevenin (vth, Rth)
    at the present vA, i.e. tau dv/dt = vout_dc(vA) - v with tau = Cout ((Rth + Rout) || Rdiv):
    7.4 us while the transistor is off or active (Rth = RC), ~5.7 us saturated (Rth ~ RC || RE).
    """
    stage = solve_stage(parts, V_MIN, V_MAX, DV)
    r_div = parts.Rdiv_top + parts.Rdiv_bot
    r_src = stage["rth"] + parts.Rout
    tau = parts.Cout * r_src * r_div / (r_src + r_div)
    dtau = parts.Cout * (r_div / (r_src + r_div)) ** 2 * stage["drth"]
    return (
        HermiteTable(V_MIN, DV, stage["vout"], stage["dvout"]),
        HermiteTable(V_MIN, DV, stage["ib"], stage["dib"]),
        HermiteTable(V_MIN, DV, tau, dtau),
    )


class CircuitModel:
    """Discretised electronic layer for one set of part values, sample rate and sub-step count.

    `run(volts, drift)` maps DAC voltages [B, T] (ZOH, one per tick) to the output-node voltage at the
    end of each tick [B, T]; differentiable in torch, dtype in = dtype out.
    """

    def __init__(self, parts, sample_rate: float, substeps: int, rest_volts: float, refine: int = 4) -> None:  # noqa: ANN001
        self.parts, self.substeps, self.refine = parts, int(substeps), int(refine)
        self.h = 1.0 / (sample_rate * self.substeps)
        # The stage's output has sharp knees (saturation sets in over ~0.1 V of vA, i.e. ~2 us), so the
        # Rout-Cout filter integrates it on a grid `refine` times finer than the sub-steps, with vA there
        # from cubic Hermite interpolation of the (smooth) tank state.
        self.delta = self.h / self.refine
        theta = np.arange(1, self.refine + 1) / self.refine
        self._hermite64 = torch.from_numpy(
            np.stack([2 * theta**3 - 3 * theta**2 + 1, theta**3 - 2 * theta**2 + theta,
                      -2 * theta**3 + 3 * theta**2, theta**3 - theta**2])
        )  # fmt: skip
        r = parts.R1 + parts.RL
        self._coef = _tank_matrices(r, parts.L1, parts.C1, self.h)
        # first-order sensitivity of the propagators to C1, so per-example drift costs no matrix exponentials
        up = _tank_matrices(r, parts.L1, parts.C1 * (1 + _DC), self.h)
        down = _tank_matrices(r, parts.L1, parts.C1 * (1 - _DC), self.h)
        self._dcoef = (up - down) / (2 * _DC)
        self.vout, self.ib, self.tau = _stage_tables(parts)
        # OUT forgets its past within ~16 tau (e^-16); the filter looks back over this many fine steps
        tau_max = float(self.tau.numpy(np.linspace(V_MIN, V_MAX, 200)).max())
        self.window = max(2, math.ceil(16 * tau_max / self.delta))
        # rest state: DC with the DAC at rest_volts (inductor current = base current)
        self.va0 = self._rest_node(r, rest_volts)
        self.il0 = float(self.ib.numpy(np.array([self.va0]))[0])

    def _rest_node(self, r: float, rest_volts: float) -> float:
        """Node A at DC: vA + R iB(vA) = u (increasing in vA, so bisection is safe)."""
        lo, hi = V_MIN, V_MAX
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if mid + r * float(self.ib.numpy(np.array([mid]))[0]) > rest_volts:
                hi = mid
            else:
                lo = mid
        return 0.5 * (lo + hi)

    def coefficients(self, drift: torch.Tensor | None, dtype: torch.dtype) -> list:
        """Propagator entries: floats, or [B] tensors linearised in the drift of C1."""
        if drift is None:
            return [float(c) for c in self._coef]
        d = drift.to(dtype)
        return [float(c) + float(dc) * d for c, dc in zip(self._coef, self._dcoef, strict=True)]

    def run(self, volts: torch.Tensor, drift: torch.Tensor | None = None) -> torch.Tensor:
        """Output-node voltage at the end of each tick for DAC voltages volts [B, T]."""
        batch, ticks = volts.shape
        p11, p12, p21, p22, gu1, gu2, gi1, gi2, h1, h2 = self.coefficients(drift, volts.dtype)
        shift: torch.Tensor | float = 0.0 if drift is None else drift.to(volts.dtype) * VBE_REF
        il = volts.new_full((batch,), self.il0)
        va = volts.new_full((batch,), self.va0)
        ib = self.ib(va + shift)
        trace, slope = [va], [il - ib]
        for n in range(ticks):
            u = volts[:, n]
            for _ in range(self.substeps):
                # exponential integrator, 2nd order in the (slow, ~RB*C1 = 100 us) base-current loading:
                # predict with iB held, correct with iB ramping to its predicted end value
                il_p = p11 * il + p12 * va + gu1 * u + gi1 * ib
                va_p = p21 * il + p22 * va + gu2 * u + gi2 * ib
                dib = self.ib(va_p + shift) - ib
                il = il_p + h1 * dib
                va = va_p + h2 * dib
                ib = self.ib(va + shift)
                trace.append(va)
                slope.append(il - ib)
        c1 = self.parts.C1 if drift is None else self.parts.C1 * (1.0 + drift.to(volts.dtype)).unsqueeze(1)
        fine = self._refine(torch.stack(trace, dim=1), torch.stack(slope, dim=1) / c1)
        if isinstance(shift, torch.Tensor):
            fine = fine + shift.unsqueeze(1)
        return self._output_filter(self.vout(fine), self.tau(fine), ticks)

    def _refine(self, va: torch.Tensor, dva: torch.Tensor) -> torch.Tensor:
        """vA on the fine grid [B, N*refine + 1] from values and slopes on the sub-step grid [B, N + 1]."""
        if self.refine == 1:
            return va
        w = self._hermite64.to(va.dtype)  # [4, refine]
        parts = (va[:, :-1, None] * w[0] + (self.h * dva[:, :-1, None]) * w[1]
                 + va[:, 1:, None] * w[2] + (self.h * dva[:, 1:, None]) * w[3])  # fmt: skip
        return torch.cat([va[:, :1], parts.flatten(1)], dim=1)

    def _output_filter(self, y: torch.Tensor, tau: torch.Tensor, ticks: int) -> torch.Tensor:
        """Solve tau(t) dv/dt = y(t) - v on the fine grid (y piecewise linear, tau constant per step);
        return v at the tick ends [B, ticks], starting settled at y[:, 0].

        v_i = sum_{j<i} exp(-sum_{j<l<i} r_l) c_j with r_j = delta/tau_j and c_j the exact FOH
        contribution of step j; the sum is cut to the last `window` steps (older weight < e^-16).
        """
        r = self.delta / (0.5 * (tau[:, 1:] + tau[:, :-1]))  # [B, N]
        one_minus_a = -torch.expm1(-r)
        b1 = 1.0 - one_minus_a / r
        c = (one_minus_a - b1) * y[:, :-1] + b1 * y[:, 1:]
        # rest history in front: settled at y0, so its steps contribute (1 - a) y0 each
        rest_r = self.delta / tau[:, :1]
        rest_c = -torch.expm1(-rest_r) * y[:, :1]
        w = self.window
        r = torch.cat([rest_r.expand(-1, w), r], dim=1)
        c = torch.cat([rest_c.expand(-1, w), c], dim=1)
        stride = self.substeps * self.refine
        # window k covers padded steps [k*stride, k*stride + w) = steps before fine index k*stride
        r_win = r.unfold(1, w, stride)[:, 1 : ticks + 1]
        c_win = c.unfold(1, w, stride)[:, 1 : ticks + 1]
        running = r_win.cumsum(-1)
        later = running[..., -1:] - running  # sum of r over the later steps in the window
        return (torch.exp(-later) * c_win).sum(-1)
