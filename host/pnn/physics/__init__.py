"""Simulated physical systems with noise, drift, quantisation and unit-to-unit variation.

Each class is a `pnn.PhysicalSystem` (drive [B, n_in] in [0, 1] -> response [B, n_out], float32)
with an exact differentiable twin `ideal()` and a JSON `describe()`:

- `Electronic`: RLC tank + 2N3904 stage read by an ESP32 (`ElectronicParts` holds its values).
- `Mechanical`: speaker-driven plate with four nonlinear modes, heard by a microphone.
- `Optical`: broadband second-harmonic generation of a shaped pulse, read by a spectrometer.

Shared conventions (the firmware runner's, see firmware/pnn_fw/runner.py): drive outside [0, 1] is
clipped (the DAC saturates); each example starts from rest (the DC state at the `rest` level); the
n_in drive samples play at `sample_rate` (ZOH) and ADC sample n is read at the end of tick n; the
n_in samples are averaged into n_out contiguous bins, bin i = samples [i*n_in//n_out,
(i+1)*n_in//n_out). Electronic and Mechanical return ADC full-scale fractions in [0, 1]; Optical
returns SH intensity normalised so a typical maximum is ~1 (spectrometer full scale 2).

`Noise()` holds realistic defaults (2% readout noise, 1% gain jitter, 1% drift per 1,000 examples,
8-bit DAC, 12-bit ADC, real part tolerances); `Noise.off()` is the ideal nominal unit, for which
`system(x)` equals `system.ideal(x)`. The seed picks the unit (its parts) and seeds its noise stream.
"""

from ._noise import Noise
from .electronic import Electronic, ElectronicParts
from .mechanical import Mechanical, MechanicalParts
from .optical import Optical

# The one list of simulated system kinds: experiment files, sim:// URLs and `pnn demo --system` derive theirs from it.
KINDS = {"electronic": Electronic, "mechanical": Mechanical, "optical": Optical}

__all__ = ["KINDS", "Electronic", "ElectronicParts", "Mechanical", "MechanicalParts", "Noise", "Optical"]
