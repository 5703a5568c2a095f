"""A tabulated static nonlinearity: cubic Hermite on a uniform grid, differentiable in torch."""

from __future__ import annotations

import numpy as np
import torch


class HermiteTable:
    """y(x) from values and slopes on a uniform grid; C1-smooth, so autograd and gradcheck are happy.

    Outside the grid the input is clamped (the caller makes the grid cover every reachable x).
    """

    def __init__(self, x0: float, dx: float, y: np.ndarray, dydx: np.ndarray) -> None:
        if y.shape != dydx.shape or y.ndim != 1 or len(y) < 2:
            raise ValueError("HermiteTable needs two 1-D arrays of equal length >= 2")
        self.x0, self.dx, self.n = float(x0), float(dx), len(y)
        y0, y1 = y[:-1], y[1:]
        d0, d1 = dydx[:-1] * dx, dydx[1:] * dx  # slopes per cell of unit width
        # y(t) = c0 + c1 t + c2 t^2 + c3 t^3 on each cell, t in [0, 1]
        coef = np.stack([y0, d0, 3 * (y1 - y0) - 2 * d0 - d1, 2 * (y0 - y1) + d0 + d1], axis=-1)
        self._coef64 = torch.from_numpy(np.ascontiguousarray(coef))
        self._coef: dict[torch.dtype, torch.Tensor] = {}

    @property
    def x_max(self) -> float:
        return self.x0 + self.dx * (self.n - 1)

    def _cell(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coef = self._coef.get(x.dtype)
        if coef is None:
            coef = self._coef[x.dtype] = self._coef64.to(x.dtype)
        s = torch.clamp((x - self.x0) * (1.0 / self.dx), 0.0, self.n - 1.0)
        cell = torch.clamp(s.detach().floor(), max=self.n - 2.0)
        return torch.index_select(coef, 0, cell.long().flatten()).view(*x.shape, 4), s - cell

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        c, t = self._cell(x)
        # Horner with fused multiply-adds: this runs twice per sub-step in the circuit's time loop
        y = torch.addcmul(c[..., 2], c[..., 3], t)
        y = torch.addcmul(c[..., 1], y, t)
        return torch.addcmul(c[..., 0], y, t)

    def numpy(self, x: np.ndarray) -> np.ndarray:
        """Evaluate on a float64 numpy array (for set-up code)."""
        return self(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()
