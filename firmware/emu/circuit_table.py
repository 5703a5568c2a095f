"""Export one unit of `pnn.physics.Electronic` as the JSON table the emulator plugin (electronic.mjs) steps.

The plugin does not re-derive the circuit: it takes this unit's drawn part values, the exact tank
propagators for its 1 us sub-step, the 2N3904 stage tables (the same cubic-Hermite cells the host model
interpolates) and the noise settings from here, so host model and emulated board are one circuit.

    python firmware/emu/circuit_table.py OUT.json [--seed N] [--additive 0.02] [--variation 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pnn.physics import Electronic, Noise
from pnn.physics._circuit import CircuitModel, _stage_tables
from pnn.physics.electronic import ADC_WINDOW_V, DAC_FULL_SCALE_V

SUBSTEP_S = 1e-6  # the plugin's integration step: a PWM period (2.048 us) spans two, the tank's 5 kHz ~200
# node A stays within about -3.5..6.8 V for drives in 0..3.3 V (see _circuit.V_MIN); cut the tables there
VA_RANGE = (-6.0, 10.0)
PICO_ADC_VREF = 3.3  # the Pico's ADC reference is its 3.3 V rail (ADC_VREF = 3V3 through a filter)


def table(seed: int = 0, noise: Noise = Noise()) -> dict:  # noqa: B008 (frozen dataclass)
    """The plugin's description of unit `seed`: parts, propagators, stage cells, rest state, noise."""
    unit = Electronic(8, seed=seed, noise=noise)
    parts = unit.parts
    model = CircuitModel(parts, 1.0 / SUBSTEP_S, 1, 0.0)
    cells = {}
    for name, tab in zip(("vout", "ib", "tau"), _stage_tables(parts), strict=True):
        lo = int(np.floor((VA_RANGE[0] - tab.x0) / tab.dx))
        hi = int(np.ceil((VA_RANGE[1] - tab.x0) / tab.dx))
        cells[name] = {"x0": tab.x0 + lo * tab.dx, "dx": tab.dx,
                       "coef": tab._coef64[lo:hi].numpy().ravel().tolist()}  # fmt: skip
    lo_v, hi_v = ADC_WINDOW_V
    return {
        "seed": seed,
        "h_s": SUBSTEP_S,
        "drive_high_v": DAC_FULL_SCALE_V,
        "coef": [float(c) for c in model._coef],
        "rest": {"il": float(model.il0), "va": float(model.va0)},
        "stage": cells,
        "adc": {"gain": parts.Rdiv_bot / (parts.Rdiv_bot + parts.Rdiv_top), "vref": PICO_ADC_VREF, "bits": 12},
        # Readout noise: Noise.additive is a fraction of the host model's ADC window; the same volts here.
        "noise_v": noise.additive * (hi_v - lo_v),
        "parts": parts.asdict(),
    }


def write(path: Path, seed: int = 0, noise: Noise = Noise()) -> Path:  # noqa: B008
    """Write `table(seed, noise)` to path (JSON) and return it."""
    path.write_text(json.dumps(table(seed, noise)))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--additive", type=float, default=Noise().additive)
    ap.add_argument("--variation", type=float, default=Noise().variation)
    a = ap.parse_args()
    write(a.out, a.seed, Noise(additive=a.additive, variation=a.variation))


if __name__ == "__main__":
    main()
