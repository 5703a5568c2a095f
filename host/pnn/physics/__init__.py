"""Simulated physical systems with noise, drift, quantisation and unit-to-unit variation.

Each class is a `pnn.PhysicalSystem` (drive [B, n_in] in [0, 1] -> response [B, n_out], float32)
with an exact differentiable twin `ideal()` and a JSON `describe()`:

- `Electronic`: RLC tank + 2N3904 stage read by an ESP32 (`ElectronicParts` holds its values).
- `Mechanical`: speaker-driven plate with four nonlinear modes, heard by a microphone.
- `Optical`: broadband second-harmonic generation of a shaped pulse, read by a spectrometer.
"""

from ._noise import Noise
from .electronic import Electronic, ElectronicParts
from .mechanical import Mechanical, MechanicalParts
from .optical import Optical

__all__ = ["Electronic", "ElectronicParts", "Mechanical", "MechanicalParts", "Noise", "Optical"]
