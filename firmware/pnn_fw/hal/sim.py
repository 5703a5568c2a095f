"""The sim HAL: the notes' electronic layer computed sample by sample behind a DAC/ADC interface.

Circuit (HARDWARE_NOTES, "A hobbyist electronic layer", ESP32 wiring):
    DAC (0..3.3 V, ZOH) -> R1 680 + L1 100 mH (DCR 200) -> node A, C1 10 nF A->GND
    A -> RB 10k -> 2N3904 base, RE 470 to GND, RC 680 to 3.3 V
    collector -> 1k -> OUT with 4.7 nF to GND -> 10k/15k divider -> ADC pin; ADC full scale 0.15..2.45 V
    (the same topology and timing as host/pnn/physics/electronic.py: ZOH DAC, ADC at the end of a tick).
The R-L-C part is linear and stepped exactly (zero-order hold over one sample period); the transistor
stage is a static map vA -> ADC-node voltage tabulated once at start-up; the output RC is a first-order
low-pass stepped with a linear ramp between the stage's values at both ends of the period.

Time only advances on `dac_write`: each write holds the new code for one sample period, so an
`adc_read` after it sees the circuit at the end of that period (what a paced loop reads just before
the next write). Unit-to-unit variation comes from board["seed"] (component tolerances, transistor
spread) and so does the ADC noise stream, so one seed always gives the same board.
Simpler than the host model: no base-current loading of node A (it damps the tank when the
transistor saturates), an Ebers-Moll-like stage instead of Gummel-Poon, no drift. The sim allocates floats per sample (MicroPython boxes them); the
runner's own loop does not.
"""

from pnn_fw.hal import HAL
from pnn_fw.hal._circuit import Rng, foh_coeffs, rlc_step, stage_table

V_DAC = 3.3  # ESP32 DAC full scale (V)
ADC_LO = 0.15  # ESP32 ADC1 at 11 dB: the near-linear window mapped onto the full code range (V)
ADC_HI = 2.45
_VA_LO = -3.0  # stage table span for node A: the Q~3.6 ringing overshoots both rails (V)
_VA_HI = 7.0
_N_TAB = 501  # 20 mV steps: linear interpolation error well under one ADC LSB


def draw_parts(seed: int, c1_nf: float, variation: float) -> dict:
    """Component values of one unit: nominal values moved within their tolerance bands by `seed`.

    `variation` scales every band (1.0: realistic tolerances, as pnn.physics.Electronic uses; 0: the
    nominal board whatever the seed).
    """
    rng = Rng(seed)
    v = variation

    def t(nominal: float, frac: float) -> float:
        return rng.tol(nominal, v * frac)

    return {
        "r1": t(680.0, 0.05) + t(200.0, 0.10),  # R1 plus the inductor's DCR
        "l1": t(0.1, 0.10),
        "c1": t(c1_nf * 1e-9, 0.10),
        "rb": t(10e3, 0.05),
        "re": t(470.0, 0.05),
        "rc": t(680.0, 0.05),
        "bf": rng.spread(416.4, v * 0.35),  # hFE spreads widely from part to part
        "is": rng.spread(6.734e-15, v * 0.5),
        "vcc": t(3.3, 0.02),
        "v_dac": t(V_DAC, 0.02),
        "r_out": t(1e3, 0.05),
        "r_top": t(10e3, 0.01),
        "r_bot": t(15e3, 0.01),
        "c_out": t(4.7e-9, 0.10),
    }


class SimHAL(HAL):
    """Simulated board: ESP32-like converters in front of the simulated electronic layer."""

    board = "sim"

    def __init__(self, board: dict) -> None:
        HAL.__init__(self, board)
        seed = board.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError("board 'seed' is %r; expected an integer >= 0" % (seed,))
        noise = board.get("adc_noise_lsb", 1.5)
        if not isinstance(noise, (int, float)) or noise < 0:
            raise ValueError("board 'adc_noise_lsb' is %r; expected a number >= 0" % (noise,))
        c1_nf = board.get("c1_nf", 10)
        if not isinstance(c1_nf, (int, float)) or c1_nf <= 0:
            raise ValueError("board 'c1_nf' is %r; expected a capacitance in nF > 0" % (c1_nf,))
        variation = board.get("variation", 1.0)
        if not isinstance(variation, (int, float)) or variation < 0:
            raise ValueError("board 'variation' is %r; expected a number >= 0" % (variation,))
        self.seed = seed
        self.paced = bool(board.get("paced", False))
        self.parts = p = draw_parts(seed, c1_nf, variation)
        # The noise stream has its own generator so that tolerances never shift with noise settings.
        self._rng = Rng(seed ^ 0x2545F491)
        self._noise = float(noise)
        self._dac_max = (1 << self.dac_bits) - 1
        self._adc_max = (1 << self.adc_bits) - 1
        self._v_lsb = p["v_dac"] / self._dac_max
        self._adc_scale = self._adc_max / (ADC_HI - ADC_LO)
        # OUT (C_out to ground) is fed from the collector through RC + R_out and loaded by the divider:
        # DC gain from the unloaded collector to the ADC pin, and OUT's Thevenin time constant.
        r_src = p["rc"] + p["r_out"]
        r_div = p["r_top"] + p["r_bot"]
        gain = r_div / (r_src + r_div) * p["r_bot"] / r_div
        self._tau = p["c_out"] * r_src * r_div / (r_src + r_div)
        self._tab = stage_table(p, _VA_LO, _VA_HI, _N_TAB, gain)
        self._tab_k = (_N_TAB - 1) / (_VA_HI - _VA_LO)
        self.set_rate(self.max_rate)
        self.reset()

    def reset(self) -> None:
        """Put the circuit in its DC steady state with the DAC at rest_code (no current, C1 charged)."""
        self._code = self.rest_code
        self._i = 0.0
        self._va = self.rest_code * self._v_lsb
        self._y = self._vc = self._stage(self._va)

    def set_rate(self, rate: int) -> None:
        """Re-discretise the circuit for a sample period of 1/rate s."""
        self.check_rate(rate)
        p = self.parts
        dt = 1.0 / rate
        self._a11, self._a12, self._a21, self._a22, self._b1, self._b2 = rlc_step(
            p["r1"], p["l1"], p["c1"], dt
        )
        self._ya, self._g0, self._g1 = foh_coeffs(self._tau, dt)
        self.rate = rate

    def _stage(self, va: float) -> float:
        """ADC-node DC level for node-A voltage `va` (table lookup, linear interpolation)."""
        x = (va - _VA_LO) * self._tab_k
        if x <= 0.0:
            return self._tab[0]
        k = int(x)
        if k >= _N_TAB - 1:
            return self._tab[_N_TAB - 1]
        t0 = self._tab[k]
        return t0 + (self._tab[k + 1] - t0) * (x - k)

    def dac_write(self, code: int) -> None:
        """Hold `code` for one sample period: advance the circuit by one step."""
        if not 0 <= code <= self._dac_max:
            raise ValueError("DAC code %d outside 0..%d" % (code, self._dac_max))
        self._code = code
        u = code * self._v_lsb
        i, va = self._i, self._va
        self._i = self._a11 * i + self._a12 * va + self._b1 * u
        self._va = va1 = self._a21 * i + self._a22 * va + self._b2 * u
        vc1 = self._stage(va1)
        self._y = self._ya * self._y + self._g0 * self._vc + self._g1 * vc1
        self._vc = vc1

    def adc_read(self) -> int:
        """Sample the ADC node: scale to codes, add seeded noise, round and clip like a real converter."""
        x = (self._y - ADC_LO) * self._adc_scale + self._noise * self._rng.gauss()
        k = int(x + 0.5)
        if k < 0:
            return 0
        if k > self._adc_max:
            return self._adc_max
        return k

    def info(self) -> dict:
        """Converters and the circuit this sim stands for."""
        return {
            "dac": "sim %d-bit 0..%.2f V" % (self.dac_bits, self.parts["v_dac"]),
            "adc": "sim %d-bit %.2f..%.2f V" % (self.adc_bits, ADC_LO, ADC_HI),
            "circuit": "R1-L1-C1 + 2N3904 CE + RC out",
            "seed": self.seed,
        }
