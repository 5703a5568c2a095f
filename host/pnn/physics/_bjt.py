"""DC solution of the 2N3904 common-emitter stage (Gummel-Poon, as SPICE evaluates it).

The stage seen from node A: A -> RB -> (RBB) -> base; emitter -> RE -> GND; collector -> (RCS) -> pin;
pin -> RC -> VCC and pin -> Rout -> out -> (Rdiv_top + Rdiv_bot) -> GND. With no capacitors in it, the
stage is a static map vA -> (vout, base current); `solve_stage` tabulates that map on a uniform vA grid.

Transistor DC equations (SPICE BJT level 1 = Gummel-Poon, IKR = ISC = 0, VAR = inf, NF = NR = 1):
    Ibe = IS (exp(vbe/VT) - 1),  Ibe2 = ISE (exp(vbe/(NE VT)) - 1),  Ibc = IS (exp(vbc/VT) - 1)
    q1 = 1 / (1 - vbc/VAF),  qb = q1 (1 + sqrt(1 + 4 Ibe/IKF)) / 2
    Ic = (Ibe - Ibc)/qb - Ibc/BR,  Ib = Ibe/BF + Ibe2 + Ibc/BR
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy.interpolate import PchipInterpolator


class StageParts(Protocol):
    """The fields of ElectronicParts the stage needs."""

    RB: float
    RE: float
    RC: float
    Rout: float
    Rdiv_top: float
    Rdiv_bot: float
    VCC: float
    IS: float
    BF: float
    VAF: float
    VT: float
    BR: float
    ISE: float
    NE: float
    IKF: float
    RBB: float
    RCS: float


def _currents(p: StageParts, vbe: np.ndarray, vbc: np.ndarray) -> tuple[np.ndarray, ...]:
    """Ic, Ib and their derivatives with respect to vbc (vbe held)."""
    ebc = np.exp(vbc / p.VT)
    ibe = p.IS * np.expm1(vbe / p.VT)
    ibe2 = p.ISE * np.expm1(vbe / (p.NE * p.VT))
    ibc = p.IS * (ebc - 1.0)
    dibc = p.IS * ebc / p.VT
    q1 = 1.0 / (1.0 - vbc / p.VAF)
    root = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * np.maximum(ibe, 0.0) / p.IKF))
    qb = q1 * root
    dqb = q1 * q1 / p.VAF * root
    ic = (ibe - ibc) / qb - ibc / p.BR
    ib = ibe / p.BF + ibe2 + ibc / p.BR
    dic = -dibc / qb - (ibe - ibc) * dqb / (qb * qb) - dibc / p.BR
    dib = dibc / p.BR
    return ic, ib, dic, dib


def _thevenin(p: StageParts, load_scale: float = 1.0) -> tuple[float, float, float]:
    """Collector-pin Thevenin source (V, ohms) and the out node's share of the pin voltage at DC.

    `load_scale` scales the Rout + divider branch (to measure the pin's output resistance).
    """
    r_load = (p.Rout + p.Rdiv_top + p.Rdiv_bot) * load_scale
    vth = p.VCC * r_load / (p.RC + r_load)
    rth = p.RC * r_load / (p.RC + r_load) + p.RCS
    return vth, rth, (p.Rdiv_top + p.Rdiv_bot) / r_load


def _operating_point(p: StageParts, vbe: np.ndarray, load_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Solve the collector loop for vbc at each internal vbe (safeguarded Newton), return node values."""
    vth, rth, out_share = _thevenin(p, load_scale)
    lo = vbe - p.VCC - 2.0  # deep forward-active: the residual is positive there
    hi = np.full_like(vbe, 1.5)  # hard saturation: the residual is negative there
    x = np.clip(vbe - 1.0, lo, hi)
    for _ in range(200):
        ic, ib, dic, dib = _currents(p, vbe, x)
        # residual: internal collector voltage minus what the Thevenin load allows; decreasing in vbc
        g = p.RE * (ib + ic) + vbe - x - (vth - rth * ic)
        dg = p.RE * (dib + dic) - 1.0 + rth * dic
        lo = np.where(g > 0, x, lo)
        hi = np.where(g > 0, hi, x)
        step = x - g / dg
        bad = ~((step > lo) & (step < hi))
        new = np.where(bad, 0.5 * (lo + hi), step)
        done = np.max(np.abs(new - x)) < 1e-13
        x = new
        if done:
            break
    else:
        raise RuntimeError("2N3904 stage DC solve did not converge")
    ic, ib, _, _ = _currents(p, vbe, x)
    ve = p.RE * (ib + ic)
    vb = ve + vbe
    vc = vb - x
    v_pin = vc + p.RCS * ic
    return {
        "vA": vb + (p.RB + p.RBB) * ib,
        "ib": ib,
        "ic": ic,
        "vout": v_pin * out_share,
        "vc": v_pin,
        "ve": ve,
    }


def _on_grid(op: dict[str, np.ndarray], grid: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """PCHIP-resample the named node values from the solved vA points to the grid (values and slopes)."""
    order = np.argsort(op["vA"])
    va = op["vA"][order]
    keep = np.concatenate([[True], np.diff(va) > 1e-12])
    out = {}
    for name in names:
        f = PchipInterpolator(va[keep], op[name][order][keep], extrapolate=True)
        out[name] = f(grid)
        out["d" + name] = f.derivative()(grid)
    return out


def solve_stage(p: StageParts, v_min: float, v_max: float, dv: float) -> dict[str, np.ndarray]:
    """Tabulate the stage on the uniform grid vA = v_min + k dv covering [v_min, v_max].

    Returns vA, vout, ib, rth (the collector pin's small-signal output resistance seen by the
    Rout branch) and their slopes d*/dvA (float64 arrays). The solve is parametric in the internal
    vbe (explicit given the collector loop), then resampled to the vA grid twice so the final points
    sit within a fraction of dv of the grid and PCHIP only fills the last gap.
    """
    n = int(round((v_max - v_min) / dv)) + 1
    grid = v_min + dv * np.arange(n)
    vbe = np.concatenate([np.linspace(v_min - 1.0, 0.3, 400), np.linspace(0.3, 1.05, 12_000)[1:]])
    op = _operating_point(p, vbe)
    if op["vA"][0] > v_min or op["vA"][-1] < v_max:
        raise RuntimeError(f"stage solve covers vA {op['vA'][0]:.2f}..{op['vA'][-1]:.2f}, not {v_min}..{v_max}")
    # second pass: internal vbe chosen to land (almost) on the grid
    vbe = np.interp(grid, op["vA"], vbe)
    out = {"vA": grid, **_on_grid(_operating_point(p, vbe), grid, ("vout", "ib", "vc"))}
    # output resistance of the pin: RC when the transistor is off or active, ~RC || RE when saturated
    eps = 0.02
    pin2 = _on_grid(_operating_point(p, vbe, 1.0 + eps), grid, ("vc",))
    r_load = p.Rout + p.Rdiv_top + p.Rdiv_bot
    di = pin2["vc"] / (r_load * (1.0 + eps)) - out["vc"] / r_load
    out["rth"] = -(pin2["vc"] - out["vc"]) / di
    out["drth"] = np.gradient(out["rth"], dv)
    return out
