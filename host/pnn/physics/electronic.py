"""The hobbyist electronic layer: a driven RLC tank into a 2N3904 common-emitter stage, read by an ESP32.

Circuit (HARDWARE_NOTES, "A hobbyist electronic layer"; every value is a field of `ElectronicParts`)::

    DAC --R1 680--L1 100 mH (DCR RL 200)--+-- A --RB 10k--|< 2N3904 (base)
                                          |               | emitter -> RE 470 -> GND
                                         C1 10 nF         | collector = C -> RC 680 -> VCC 3.3 V
                                          |               C --Rout 1k-- OUT --Rdiv_top 10k-- GPIO34 --Rdiv_bot 15k-- GND
                                         GND                            |
                                                                       Cout 4.7 nF -> GND

The ADC divider is part of the circuit: it loads OUT with 25 kOhm, so the cut-off level is
3.30 V * 25/(25 + 1 + 0.68) = 3.09 V (1.37 V saturated), not the 3.30 V of an unloaded node.
A SPICE netlist that should match `waveform` must include it (for an unloaded OUT, make both divider
resistors huge in the parts).

Model (what `waveform` and the layer compute):
1. DAC: ESP32 8-bit DAC, drive d in [0, 1] -> u = 3.3 V * d, held for one tick (ZOH) of 1/sample_rate.
2. Tank: L1 diL/dt = u - (R1 + RL) iL - vA,  C1 dvA/dt = iL - iB(vA). The linear part is integrated
   exactly (matrix exponential) on `substeps` sub-steps per tick; the base current iB(vA) (the stage
   loading node A: ~7 uA when active but up to ~0.15 mA when saturated, which damps the tank) enters
   as a first-order-hold input with a predictor-corrector (exponential integrator, 2nd order).
3. Stage: with no capacitance of its own (the 2N3904's ~10 pF junctions with RB give a ~0.1 us pole,
   far above the 20 kS/s band) the transistor stage is a static map vA -> (DC output voltage, iB).
   It is solved once with the Gummel-Poon DC equations SPICE uses (IS, BF, BR, ISE, NE, IKF, VAF, and
   the 10 Ohm base / 1 Ohm collector resistances of the standard 2N3904 model), tabulated every
   2.5 mV over vA in [-12, 16] V, and interpolated with C1 cubic Hermite polynomials.
4. Output: Cout dv/dt = (vth - v)/(Rth + Rout) - v/Rdiv with the collector pin's Thevenin (vth, Rth)
   at the present vA, i.e. tau(vA) dv/dt = vout_dc(vA) - v, tau = Cout ((Rth + Rout) || (Rdiv_top +
   Rdiv_bot)): 7.4 us while the transistor is cut off or active (Rth = RC), ~5.7 us saturated (Rth ~
   RC || RE). Rth(vA) is tabulated with the stage (small-signal, from the same DC solve). The stage's
   output has sharp knees (saturation sets in over ~0.1 V of vA, ~2 us), so this ODE is solved on a
   grid 4x finer than the sub-steps (vA there by cubic Hermite interpolation of the tank state),
   exactly for a piecewise-linear vout_dc and a per-step constant tau.
5. Timing: each example starts from rest (DC state with the DAC at `rest`); ADC sample n is taken at
   the END of tick n, t = (n + 1)/sample_rate, i.e. it has seen drive samples 0..n.
6. ADC: ESP32 GPIO34 at 11 dB, usable window 0.15-2.45 V taken as full scale: the response is
   (vout * Rdiv_bot/(Rdiv_top + Rdiv_bot) - 0.15) / 2.30, a full-scale fraction in [0, 1] (the circuit
   spans ~0.30..0.74 of it), plus readout noise, clipped to [0, 1] and quantised to adc_bits.

Accuracy. Scheme error against the same equations converged (substeps=64), random 0..3.3 V drives:
2.8 mV RMS, 32 mV max at substeps=4 (0.7 / 10 mV at 8); the max sits where vA crosses the saturation
knee of the base-current load. Against ngspice 4x (full 2N3904 model with its junction capacitances
and storage time, this netlist incl. the divider, 0.5 us max step, reltol 1e-5; 8 drives x 100 ticks:
random, a 3.3 V step, a ramp, a small sine): 2.4 mV RMS (0.14% of the 1.7 V swing), 17 mV max.
Neglected: junction capacitances and storage time (~0.1-0.4 us; ngspice with and without them differs
by ~1 mV RMS), GMIN, the ADC's sampling load on the divider. Base-current loading of node A is NOT
neglected: it damps the tank whenever the stage saturates; leaving it out would put OUT off by
155 mV RMS (1.1 V max) on random drives, because the undamped tank then rings on after each saturation.

Imperfections (`Noise`): per-example gain jitter scales the DAC voltage (supply ripple: the ESP32 DAC
references its 3.3 V rail); drift d moves C1 by d*C1 and the transistor's VBE by d*0.65 V (a
temperature change of a few kelvin); unit variation draws resistors +-5% (divider +-1%), L1, RL, C1,
Cout +-10%, VCC +-2%, IS and ISE x/÷ e^0.5, BF x/÷ e^0.35, VAF and IKF +-20%.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ._base import SimulatedSystem
from ._circuit import CircuitModel
from ._noise import Noise, log_spread, tolerance

DAC_FULL_SCALE_V = 3.3
ADC_WINDOW_V = (0.15, 2.45)


@dataclass(frozen=True)
class ElectronicParts:
    """Component values of the electronic layer (SI units), defaults from HARDWARE_NOTES.

    The 2N3904 fields follow the standard SPICE model (IS=6.734f BF=416.4 VAF=74.03 BR=.7371
    ISE=6.734f NE=1.259 IKF=66.78m RB=10 RC=1; here RBB and RCS), VT at 27 C as SPICE uses.
    """

    R1: float = 680.0
    L1: float = 100e-3
    RL: float = 200.0
    C1: float = 10e-9
    RB: float = 10e3
    RE: float = 470.0
    RC: float = 680.0
    Rout: float = 1e3
    Cout: float = 4.7e-9
    Rdiv_top: float = 10e3
    Rdiv_bot: float = 15e3
    VCC: float = 3.3
    IS: float = 6.734e-15
    BF: float = 416.4
    VAF: float = 74.03
    VT: float = 0.025864
    BR: float = 0.7371
    ISE: float = 6.734e-15
    NE: float = 1.259
    IKF: float = 66.78e-3
    RBB: float = 10.0
    RCS: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"ElectronicParts.{f.name} must be a finite number > 0, got {value!r}")

    def asdict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def vary(self, rng: np.random.Generator, variation: float) -> ElectronicParts:
        """One unit's values: each part drawn within its tolerance (scaled by `variation`)."""
        tol = {"R1": 0.05, "RB": 0.05, "RE": 0.05, "RC": 0.05, "Rout": 0.05, "Rdiv_top": 0.01,
               "Rdiv_bot": 0.01, "L1": 0.10, "RL": 0.10, "C1": 0.10, "Cout": 0.10, "VCC": 0.02,
               "VAF": 0.20, "IKF": 0.20}  # fmt: skip
        spread = {"IS": 0.5, "ISE": 0.5, "BF": 0.35}
        values = {}
        for f in dataclasses.fields(self):  # fixed order, so a seed always draws the same board
            nominal = getattr(self, f.name)
            if f.name in tol:
                values[f.name] = tolerance(rng, nominal, tol[f.name], variation)
            elif f.name in spread:
                values[f.name] = log_spread(rng, nominal, spread[f.name], variation)
            else:
                values[f.name] = nominal
        return ElectronicParts(**values)


class Electronic(SimulatedSystem):
    """The electronic layer as a `PhysicalSystem`: drive [B, n_in] in [0, 1] -> ADC fractions [B, n_out].

    Args:
        n_in: drive samples per example (ticks).
        n_out: response bins (<= n_in); default n_in.
        seed: unit: draws the part values (within tolerance) and seeds the noise stream.
        noise: imperfections; `Noise.off()` gives the ideal, deterministic nominal board.
        sample_rate: tick rate of DAC and ADC (samples/s).
        rest: DAC level (drive units) held before each example; the example starts from that DC state.
        parts: nominal component values (the unit's are drawn around them).
        substeps: integration sub-steps per tick (4 keeps the scheme error far below ADC noise).
    """

    full_scale = 1.0

    def __init__(
        self,
        n_in: int = 64,
        n_out: int | None = None,
        *,
        seed: int = 0,
        noise: Noise = Noise(),  # noqa: B008 (frozen dataclass: a shared default is safe)
        sample_rate: float = 20e3,
        rest: float = 0.0,
        parts: ElectronicParts | None = None,
        substeps: int = 4,
    ) -> None:
        super().__init__(n_in, n_in if n_out is None else n_out, seed, noise)
        self.nominal_parts = self._set_clock(sample_rate, (100.0, 1e7), rest, substeps, parts, ElectronicParts)
        self.parts = self.nominal_parts.vary(np.random.default_rng([self.seed, 0]), noise.variation)
        self._model = self._build(self.parts)
        self._nominal_model: CircuitModel | None = None
        self._adc_gain = self.parts.Rdiv_bot / (self.parts.Rdiv_bot + self.parts.Rdiv_top)

    def _build(self, parts: ElectronicParts) -> CircuitModel:
        return CircuitModel(parts, self.sample_rate, self.substeps, self.rest * DAC_FULL_SCALE_V)

    def _samples(self, drive: torch.Tensor, gain: torch.Tensor | None, drift: torch.Tensor | None) -> torch.Tensor:
        volts = drive * DAC_FULL_SCALE_V
        if gain is not None:
            volts = volts * gain.to(volts.dtype).unsqueeze(1)
        vout = self._model.run(volts, drift)
        lo, hi = ADC_WINDOW_V
        return (vout * self._adc_gain - lo) / (hi - lo)

    def waveform(self, volts: np.ndarray, *, nominal: bool = False) -> np.ndarray:
        """Noiseless OUT voltage (V, before the divider) for DAC voltages at the sample rate.

        Args:
            volts: [B, T] DAC output voltages, one per tick (not clipped: any values in about
                -8..12 V keep node A inside the tabulated range).
            nominal: use the nominal parts instead of this unit's drawn parts.
        Returns:
            [B, T] float64: OUT at the end of each tick, t = (n + 1)/sample_rate, starting from rest.
        """
        v = np.asarray(volts, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] < 1:
            raise ValueError(f"waveform expects volts of shape [B, T], got {list(v.shape)}")
        if not np.isfinite(v).all():
            raise ValueError("waveform volts must be finite")
        model = self._model
        if nominal:
            if self._nominal_model is None:
                self._nominal_model = self._build(self.nominal_parts)
            model = self._nominal_model
        with torch.no_grad():
            return model.run(torch.from_numpy(v)).numpy()

    def describe(self) -> dict:
        """JSON-serialisable description: settings, this unit's parts and the nominal parts."""
        d = self._base_describe()
        d.update(
            sample_rate=self.sample_rate,
            rest=self.rest,
            substeps=self.substeps,
            dac_full_scale_v=DAC_FULL_SCALE_V,
            adc_window_v=list(ADC_WINDOW_V),
            parts=self.parts.asdict(),
            nominal_parts=self.nominal_parts.asdict(),
        )
        return d
