"""Circuit maths for the sim HAL, in plain MicroPython floats (no numpy).

The electronic layer of HARDWARE_NOTES: DAC -> R1 + L1 (with its DCR) -> node A, C1 from A to ground;
A drives a 2N3904 common-emitter stage (RB, RE, RC); the collector goes through a resistor and a
10k/15k divider to the ADC pin, which has a small capacitor to ground.

Three pieces, each computed once and then reused sample by sample:
- `Rng`: a seeded xorshift32 generator (component tolerances, ADC noise), the same on every port;
- `rlc_step`: the exact zero-order-hold discretisation of the linear R-L-C part at one sample period;
- `stage_table`: the transistor stage as a static map vA -> ADC-node voltage, tabulated on a grid.
"""

import math
from array import array

_MASK32 = 0xFFFFFFFF
_VT = 0.02585  # thermal voltage at 300 K
_VCE_SAT = 0.1  # collector-emitter saturation voltage of a 2N3904 at a few mA


class Rng:
    """xorshift32: small, fast, and identical on CPython and every MicroPython port."""

    def __init__(self, seed: int) -> None:
        # Spread nearby seeds apart (0, 1, 2 ... must give unrelated streams) and never start at 0.
        x = ((seed & _MASK32) * 0x9E3779B1 + 0x7F4A7C15) & _MASK32
        self._x = x or 1
        for _ in range(8):
            self.next_u32()

    def next_u32(self) -> int:
        """Return the next 32-bit value."""
        x = self._x
        x ^= (x << 13) & _MASK32
        x ^= x >> 17
        x ^= (x << 5) & _MASK32
        self._x = x
        return x

    def uniform(self, lo: float, hi: float) -> float:
        """Return a float uniform in [lo, hi)."""
        return lo + (hi - lo) * (self.next_u32() / 4294967296.0)

    def tol(self, nominal: float, frac: float) -> float:
        """Return `nominal` moved by a uniform relative error within +-frac (a part's tolerance band)."""
        return nominal * (1.0 + self.uniform(-frac, frac))

    def spread(self, nominal: float, s: float) -> float:
        """Return `nominal` scaled by a log-uniform factor within exp(+-s) (transistor parameters)."""
        return nominal * math.exp(self.uniform(-s, s))

    def gauss(self) -> float:
        """Return an approximately standard-normal value (Irwin-Hall sum of four uniforms, variance 1)."""
        s = self.next_u32() + self.next_u32() + self.next_u32() + self.next_u32()
        return (s / 4294967296.0 - 2.0) * 1.7320508075688772


def rlc_step(r: float, ind: float, c: float, dt: float) -> tuple:
    """Exact ZOH discretisation of the series R-L into shunt C, state (i_L, v_A), input v_dac.

    Continuous system: L di/dt = u - R i - v_A,  C dv_A/dt = i  (L = `ind`).  With A its 2x2 matrix, the step is
    x[k+1] = expm(A dt) x[k] + A^-1 (expm(A dt) - I) B u[k], exact for a DAC held constant over dt.

    Returns:
        (a11, a12, a21, a22, b1, b2) with i' = a11 i + a12 v + b1 u and v' = a21 i + a22 v + b2 u.
    """
    m11, m12, m21, m22 = -r / ind, -1.0 / ind, 1.0 / c, 0.0
    e11, e12, e21, e22 = _expm2(m11, m12, m21, m22, dt)
    # A^-1 (E - I) B with B = (1/L, 0): only the first column of (E - I) matters.
    det = m11 * m22 - m12 * m21
    p1, p2 = (e11 - 1.0) / ind, e21 / ind
    b1 = (m22 * p1 - m12 * p2) / det
    b2 = (-m21 * p1 + m11 * p2) / det
    return e11, e12, e21, e22, b1, b2


def _expm2(m11: float, m12: float, m21: float, m22: float, t: float) -> tuple:
    """expm(M t) of a real 2x2 matrix in closed form (Cayley-Hamilton on the eigenvalues' mean)."""
    half_tr = 0.5 * (m11 + m22)
    disc = half_tr * half_tr - (m11 * m22 - m12 * m21)
    if disc > 1e-12 * half_tr * half_tr:  # two real eigenvalues: overdamped
        q = math.sqrt(disc)
        c0, c1 = math.cosh(q * t), math.sinh(q * t) / q
    elif disc < -1e-12 * half_tr * half_tr:  # complex pair: the ringing case of the notes' layer
        q = math.sqrt(-disc)
        c0, c1 = math.cos(q * t), math.sin(q * t) / q
    else:  # critically damped
        c0, c1 = 1.0, t
    g = math.exp(half_tr * t)
    # expm(Mt) = e^{tr/2 t} [c0 I + c1 (M - tr/2 I)]
    return (g * (c0 + c1 * (m11 - half_tr)), g * c1 * m12, g * c1 * m21, g * (c0 + c1 * (m22 - half_tr)))


def foh_coeffs(tau: float, dt: float) -> tuple:
    """First-order low-pass y' = (u - y)/tau over one step with u varying linearly from u0 to u1.

    Returns:
        (a, g0, g1) with y1 = a y0 + g0 u0 + g1 u1 (exact for the linear ramp).
    """
    a = math.exp(-dt / tau)
    g1 = 1.0 - tau / dt * (1.0 - a)
    return a, (1.0 - a) - g1, g1


def stage_vc(va: float, p: dict) -> float:
    """Collector voltage of the common-emitter stage for base-drive voltage `va` (static, solved).

    Model: ic = BF ib in the active region, vbe = VT ln(1 + ic/IS), va = RB ib + vbe + RE (ib + ic),
    with ic softly limited to the saturation current (VCC - VCE_SAT - RE ib)/(RC + RE). Solved for ib by
    bisection, which is safe because va(ib) increases monotonically.
    """
    if va <= 0.0:
        return p["vcc"]
    rb, re, rc, bf, is_, vcc = p["rb"], p["re"], p["rc"], p["bf"], p["is"], p["vcc"]
    lo, hi = 0.0, va / rb
    ic = 0.0
    for _ in range(48):
        ib = 0.5 * (lo + hi)
        ic = _collector_current(ib, bf, re, rc, vcc)
        v = rb * ib + _VT * math.log(1.0 + bf * ib / is_) + re * (ib + ic)
        if v > va:
            hi = ib
        else:
            lo = ib
    return vcc - rc * ic


def _collector_current(ib: float, bf: float, re: float, rc: float, vcc: float) -> float:
    """Active-region current softly clipped at saturation (a smooth min keeps the table differentiable)."""
    act = bf * ib
    sat = (vcc - _VCE_SAT - re * ib) / (rc + re)
    if sat < 0.0:
        sat = 0.0
    eps = 0.03 * sat
    d = act - sat
    # The second term shifts the smooth min so that no base current means exactly no collector current.
    return 0.5 * (act + sat - math.sqrt(d * d + eps * eps)) - 0.5 * (sat - math.sqrt(sat * sat + eps * eps))


def stage_table(p: dict, v_lo: float, v_hi: float, n: int, gain: float) -> array:
    """Tabulate gain * stage_vc(va) at n evenly spaced va in [v_lo, v_hi] (float32)."""
    step = (v_hi - v_lo) / (n - 1)
    t = array("f", bytes(4 * n))
    for k in range(n):
        t[k] = gain * stage_vc(v_lo + k * step, p)
    return t
