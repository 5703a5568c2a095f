"""pnn.physics: the simulated physical systems (interface, noise switches, physics properties)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from pnn.physics import Electronic, ElectronicParts, Mechanical, MechanicalParts, Noise, Optical
from pnn.system import PhysicalSystem

N_IN, N_OUT = 24, 8
QUIET = Noise.off()


def make(cls, noise: Noise = QUIET, seed: int = 0, n_in: int = N_IN, n_out: int = N_OUT, **kw):
    return cls(n_in=n_in, n_out=n_out, seed=seed, noise=noise, **kw)


CLASSES = [Electronic, Mechanical, Optical]


def drives(batch: int = 16, n_in: int = N_IN, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, n_in, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", CLASSES)
def test_is_physical_system_with_shape_dtype_and_finite_output(cls) -> None:
    system = make(cls, Noise())
    assert isinstance(system, PhysicalSystem)
    x = drives().requires_grad_(True)
    y = system(x)
    assert y.shape == (16, N_OUT) and y.dtype == torch.float32 and y.device.type == "cpu"
    assert torch.isfinite(y).all()
    assert not y.requires_grad and y.grad_fn is None  # a measurement builds no graph
    assert system(torch.zeros(0, N_IN)).shape == (0, N_OUT)


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_shapes_and_values_raise_value_error(cls) -> None:
    system = make(cls)
    for bad in (torch.rand(N_IN), torch.rand(3, N_IN + 1), torch.rand(2, 3, N_IN)):
        with pytest.raises(ValueError, match=rf"\[B, {N_IN}\]"):
            system(bad)
        with pytest.raises(ValueError, match=rf"\[B, {N_IN}\]"):
            system.ideal(bad)
    with pytest.raises(ValueError, match="NaN"):
        system(torch.full((1, N_IN), float("nan")))
    with pytest.raises(ValueError, match="n_out"):
        cls(n_in=4, n_out=5)
    with pytest.raises(ValueError):
        cls(n_in=4, seed=-1)


@pytest.mark.parametrize("cls", CLASSES)
def test_drive_outside_unit_range_is_clipped_like_a_saturating_dac(cls) -> None:
    system = make(cls)
    x = drives()
    wild = x * 3 - 1
    assert torch.equal(system(wild), system(wild.clamp(0, 1)))


@pytest.mark.parametrize("cls", CLASSES)
def test_noise_off_is_deterministic_and_equals_ideal(cls) -> None:
    system = make(cls)
    x = drives()
    a, b = system(x), system(x)
    assert torch.equal(a, b)
    ideal = system.ideal(x)
    assert ideal.dtype == torch.float32
    torch.testing.assert_close(a, ideal, rtol=1e-6, atol=1e-6)
    ideal64 = system.ideal(x.double())
    assert ideal64.dtype == torch.float64
    torch.testing.assert_close(a.double(), ideal64, rtol=1e-5, atol=1e-5)


SWITCHES = {
    "additive": dataclasses.replace(Noise.off(), additive=0.02),
    "multiplicative": dataclasses.replace(Noise.off(), multiplicative=0.01),
    "drift": dataclasses.replace(Noise.off(), drift=0.1),
    "dac_bits": dataclasses.replace(Noise.off(), dac_bits=4),
    "adc_bits": dataclasses.replace(Noise.off(), adc_bits=6),
    "variation": dataclasses.replace(Noise.off(), variation=1.0),
}


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_noise_switch_changes_outputs(cls, switch: str) -> None:
    x = drives(64)
    clean = make(cls)(x)
    system = make(cls, SWITCHES[switch])
    if switch == "drift":
        system(drives(800, seed=1))  # let the walk wander for 800 examples
    noisy = system(x)
    diff = (noisy - clean).abs()
    assert diff.max() > 1e-3, f"{switch} changed nothing"
    assert diff.mean() < 0.2 * clean.abs().mean(), f"{switch} is implausibly large"


@pytest.mark.parametrize("cls", CLASSES)
def test_seeds_are_different_units_only_with_variation(cls) -> None:
    x = drives()
    varied = dataclasses.replace(Noise.off(), variation=1.0)
    assert not torch.allclose(make(cls, varied, seed=1)(x), make(cls, varied, seed=2)(x), atol=1e-4)
    assert torch.equal(make(cls, varied, seed=3)(x), make(cls, varied, seed=3)(x))
    assert torch.equal(make(cls, QUIET, seed=1)(x), make(cls, QUIET, seed=2)(x))


@pytest.mark.parametrize("cls", CLASSES)
def test_noise_stream_is_seeded(cls) -> None:
    x = drives()
    assert torch.equal(make(cls, Noise(), seed=5)(x), make(cls, Noise(), seed=5)(x))
    assert not torch.equal(make(cls, Noise(), seed=5)(x), make(cls, Noise(), seed=6)(x))


@pytest.mark.parametrize("cls", CLASSES)
def test_ideal_is_differentiable(cls) -> None:
    system = make(cls, Noise(), n_in=6, n_out=3)
    x = (0.2 + 0.6 * torch.rand(2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))
    assert torch.autograd.gradcheck(system.ideal, (x.requires_grad_(True),), eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("cls", CLASSES)
def test_describe_is_json(cls) -> None:
    d = make(cls, Noise(), seed=4).describe()
    assert d["class"] == cls.__name__ and d["n_in"] == N_IN and d["n_out"] == N_OUT and d["seed"] == 4
    assert d["noise"] == dataclasses.asdict(Noise())
    assert json.loads(json.dumps(d)) == d


# -- Electronic --------------------------------------------------------------------------------


def test_electronic_saturates_and_compresses() -> None:
    system = Electronic(n_in=32, n_out=32, noise=QUIET)
    levels = torch.linspace(0, 1, 11).unsqueeze(1).expand(-1, 32)
    settled = system(levels)[:, -1]  # DC transfer after the tank has rung down
    # cut off at low drive (OUT ~3.09 V -> 0.74 FS), saturated at high drive (~1.37 V -> 0.29 FS)
    assert settled[0] == pytest.approx(0.7415, abs=2e-3) and settled[-1] == pytest.approx(0.297, abs=5e-3)
    # an inverting stage up to saturation (deep in it, base current lifts the emitter a little)
    assert torch.all(settled[1:8] <= settled[:7] + 1e-5)
    # doubling a swing around midscale does not double the response
    mid = torch.full((1, 32), 0.45)
    small = system(mid + 0.05)[0, -1] - system(mid - 0.05)[0, -1]
    big = system(mid + 0.4)[0, -1] - system(mid - 0.4)[0, -1]
    assert abs(big) < 0.6 * 8 * abs(small)


def test_electronic_is_causal_with_memory() -> None:
    system = Electronic(n_in=32, n_out=32, noise=QUIET, rest=0.45)
    base = torch.full((1, 32), 0.45)
    kicked = base.clone()
    kicked[0, 10] = 0.75
    delta = (system(kicked) - system(base))[0]
    assert torch.all(delta[:10] == 0)  # never earlier than the impulse
    assert delta[10:18].abs().max() > 0.02
    assert delta[12:18].abs().max() > 0.01  # rings on for several ticks


def test_electronic_waveform_in_volts() -> None:
    system = Electronic(n_in=8, noise=QUIET)
    out = system.waveform(np.array([[0.0] * 20, [3.3] * 20]))
    assert out.shape == (2, 20)
    assert out[0] == pytest.approx(np.full(20, 3.0922), abs=1e-3)  # cut off: VCC into the divider load
    assert out[1, -1] == pytest.approx(1.370, abs=5e-3)  # saturated
    assert system.waveform(np.full((1, 5), 1.0), nominal=True).shape == (1, 5)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        system.waveform(np.zeros(5))


def test_electronic_parts_are_validated_and_varied_per_seed() -> None:
    with pytest.raises(ValueError, match="C1"):
        ElectronicParts(C1=-1.0)
    a = Electronic(noise=Noise(), seed=1).parts
    b = Electronic(noise=Noise(), seed=2).parts
    assert a != b and a.C1 != ElectronicParts().C1
    assert Electronic(noise=QUIET, seed=1).parts == ElectronicParts()


# -- Mechanical --------------------------------------------------------------------------------


def test_mechanical_keeps_ringing_after_a_short_drive() -> None:
    system = Mechanical(n_in=64, n_out=64, noise=QUIET)
    burst = torch.full((1, 64), 0.5)  # midscale = no force
    burst[0, 2:6] = 1.0
    y = system(burst)[0] - 0.5
    assert torch.all(y[:2] == 0)
    assert y[6:].abs().max() > 0.1  # still loud after the drive stopped
    assert y[48:].abs().max() > 0.05  # ~3 ms later the plate still rings (Q = 25)
    # and with the mic's 60 Hz high-pass, a held level gives no steady offset
    assert system(torch.full((1, 64), 0.5)).sub(0.5).abs().max() == 0


def test_mechanical_mode_frequency_matters() -> None:
    x = drives(32, n_in=64)
    a = Mechanical(n_in=64, n_out=16, noise=QUIET)(x)
    shifted = MechanicalParts(freqs_hz=tuple(f * 1.02 for f in MechanicalParts().freqs_hz))
    b = Mechanical(n_in=64, n_out=16, noise=QUIET, parts=shifted)(x)
    # the notes: a 2% mode error is a large output error for a high-Q plate
    assert (a - b).pow(2).mean().sqrt() > 0.1 * (a - 0.5).pow(2).mean().sqrt()


# -- Optical -----------------------------------------------------------------------------------


def test_optical_sh_field_is_quadratic_in_the_drive_scale() -> None:
    system = Optical(n_in=32, n_out=16, noise=QUIET)
    x = drives(8, n_in=32)
    for c in (0.5, 0.8):
        # the SH field goes as the drive squared, so the measured intensity goes as c**4
        torch.testing.assert_close(system(c * x), c**4 * system(x), rtol=1e-4, atol=1e-6)
    # and not a linear map: the sum of two drives is not the sum of the responses
    a, b = drives(8, n_in=32, seed=1) * 0.5, drives(8, n_in=32, seed=2) * 0.5
    assert (system(a + b) - system(a) - system(b)).abs().max() > 0.05


def test_optical_mixes_frequencies() -> None:
    system = Optical(n_in=32, n_out=32, noise=QUIET)
    base = torch.full((1, 32), 0.5)
    poked = base.clone()
    poked[0, 5] = 1.0
    delta = (system(poked) - system(base))[0]
    # one shaper bin reaches every SH pixel it sums with, far from its own position
    assert (delta.abs() > 1e-3).sum() > 20


def test_optical_typical_maximum_is_about_one() -> None:
    y = Optical(n_in=64, noise=QUIET)(drives(200, n_in=64))
    assert 0.7 < float(y.max(dim=1).values.median()) < 1.5


def test_noise_settings_are_validated() -> None:
    assert Noise.off() == Noise(additive=0, multiplicative=0, drift=0, dac_bits=None, adc_bits=None, variation=0)
    for bad in ({"additive": -0.1}, {"drift": float("nan")}, {"dac_bits": 0}, {"adc_bits": 8.0}, {"dac_bits": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Noise(**bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Noise().additive = 0.5  # type: ignore[misc]


def test_optical_phase_encoding() -> None:
    x = drives(8, n_in=32)
    phase = Optical(n_in=32, noise=QUIET, encoding="phase")
    y = phase(x)
    assert torch.isfinite(y).all() and not torch.allclose(y, Optical(n_in=32, noise=QUIET)(x))
    # m = 1 everywhere is m = 0 plus a global phase of pi, which the SH intensity cannot see
    torch.testing.assert_close(phase(torch.zeros(1, 32)), phase(torch.ones(1, 32)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="encoding"):
        Optical(n_in=32, encoding="polarisation")


def test_drift_is_a_smooth_walk_of_the_stated_size() -> None:
    from pnn.physics._noise import NoiseStream

    stream = NoiseStream(Noise(drift=0.01), seed=0)
    d = np.concatenate([stream.drift(1000).numpy() for _ in range(100)])
    assert 0.006 < np.std(d[1000:] - d[:-1000]) < 0.013  # ~1% per 1,000 examples
    assert np.std(np.diff(d)) < 1e-4  # smooth from one example to the next
    assert NoiseStream(Noise.off(), seed=0).drift(10) is None
