"""The emulator's circuit (firmware/emu/circuit.mjs) and pnn.physics.Electronic are one circuit.

An ideal RP2040 PWM (code/256 duty, 488 kHz, wrapping at each tick) plays the same codes into the plugin's
circuit (in Node, no emulator) and into the host model's ideal DAC (3.3 V * code/256, held per tick); OUT
at the end of each tick must agree within 1 % of the swing RMS and 4 % at worst. What is left is the two
schemes' step sizes (the host's own scheme error at substeps=4 is 2.8 mV RMS, 32 mV max) and the carrier.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pnn.physics import Electronic, Noise

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "firmware" / "emu"
sys.path.insert(0, str(EMU))
import circuit_table  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (`node`) for firmware/emu")
QUIET = Noise(additive=0.0, multiplicative=0.0, drift=0.0, dac_bits=None, adc_bits=None, variation=1.0)
RATE = 20_000


def play(table: Path, codes: list[list[int]], noise: bool = False) -> np.ndarray:
    req = json.dumps({"table": str(table), "codes": codes, "rate": RATE, "noise": noise})
    r = subprocess.run(["node", str(EMU / "play_pwm.mjs")], input=req, capture_output=True, text=True,
                       check=True, timeout=600)  # fmt: skip
    return np.array(json.loads(r.stdout))


@pytest.fixture(scope="module")
def unit3(tmp_path_factory) -> Path:
    return circuit_table.write(tmp_path_factory.mktemp("emu") / "unit3.json", 3, QUIET)


def test_plugin_circuit_matches_the_host_model_on_random_codes_and_a_step(unit3):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(3, 64)).tolist() + [[255] * 32 + [0] * 32]
    emu = play(unit3, codes)
    host = Electronic(64, seed=3, noise=QUIET, sample_rate=RATE).waveform(3.3 * np.array(codes) / 256)
    swing = host.max() - host.min()
    assert swing > 1.5  # the drive reaches both saturation and cut-off: the nonlinear stage is exercised
    err = emu - host
    assert np.sqrt(np.mean(err**2)) < 0.01 * swing
    assert np.abs(err).max() < 0.04 * swing


def test_another_unit_draws_other_parts_and_the_plugin_follows_them(unit3, tmp_path):
    other = circuit_table.write(tmp_path / "unit7.json", 7, QUIET)
    codes = [[200] * 16 + [40] * 48]
    a, b = play(unit3, codes), play(other, codes)
    host7 = Electronic(64, seed=7, noise=QUIET, sample_rate=RATE).waveform(3.3 * np.array(codes) / 256)
    assert np.abs(a - b).max() > 0.01  # units differ by more than the scheme error ...
    assert np.abs(b - host7).max() < 0.02  # ... and the plugin tracks the one it was given
