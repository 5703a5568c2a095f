"""The networks: the linear baselines are the physical net with the physics (and for linear-unclipped the clip)
removed; hybrid options."""

import pytest
import torch
from toy_systems import Exact, LeakyTanh

from pnn.data import Task, load_task
from pnn.nets import TRAINERS, TrainConfig, build
from pnn.train import accuracy, train


@pytest.fixture(scope="module")
def task():
    full = load_task("digits")
    return Task("digits-small", full.x_train[:300], full.y_train[:300], full.x_test, full.y_test, full.classes)


def _exact(system):
    """The system's exact model as a twin, with the response statistics a fitted twin carries."""
    twin = Exact(system)
    y = system(torch.rand(256, system.n_in, generator=torch.Generator().manual_seed(0)))
    twin.y_mean, twin.y_std = y.mean(0), y.std(0)
    return twin


def _shapes(net):
    return {name: tuple(p.shape) for name, p in net.named_parameters()}


@pytest.mark.parametrize(
    ("n_in", "n_out", "cfg"),
    [
        (64, 64, TrainConfig(depth=2)),
        (96, 32, TrainConfig(depth=1, encoder="concat")),
        (48, 24, TrainConfig(depth=3, encoder="concat", mix=True, data_width=32)),
        (64, 16, TrainConfig(depth=2, mix=True)),
        (32, 16, TrainConfig(depth=2, mix=True, passes=3, repeats=2)),
        (96, 32, TrainConfig(depth=2, encoder="concat", passes=2)),
        (64, 64, TrainConfig(depth=2, passes=2)),
    ],
)
def test_linear_baseline_is_the_physical_net_without_physics(task, n_in, n_out, cfg):
    system = LeakyTanh(n_in, n_out=n_out)
    twin = _exact(system)
    pat, _, pat_bodies = build("pat", task, system, twin, cfg)
    linear, train_bodies, test_bodies = build("linear", task, system, None, cfg)
    assert _shapes(linear) == _shapes(pat)  # same names, same shapes: nothing added, nothing lost
    assert all(sum(p.numel() for p in body.parameters()) == 0 for body in train_bodies + test_bodies)
    # Same seed, same initial values; only what fills the layer slots differs.
    for (name, a), b in zip(linear.named_parameters(), pat.parameters(), strict=True):
        assert torch.equal(a, b), name
    drive = torch.rand(5, n_in)
    expected = drive.reshape(5, n_out, n_in // n_out).mean(-1)  # the drive, bin-averaged to n_out values
    assert torch.allclose(test_bodies[0](drive), expected, atol=1e-6)
    assert pat_bodies[0] is not test_bodies[0]


def test_linear_baseline_is_linear_in_the_drive(task):
    """Removing the physics leaves readout(standardise(drive)): affine in each drive while it is unclipped."""
    system = LeakyTanh(64)
    net, _, bodies = build("linear", task, system, None, TrainConfig(depth=1))
    net.use(bodies).eval()
    net.encoders[0].a.data.fill_(0.01)  # keep drives far from the clip at 0 and 1
    x1, x2 = task.x_test[:4], task.x_test[4:8]
    mid = net((x1 + x2) / 2)
    assert torch.allclose(mid, (net(x1) + net(x2)) / 2, atol=1e-4)


def test_linear_and_hybrid_learn(task):
    system = LeakyTanh(64, gain=3.0)
    twin = _exact(system)
    linear = train("linear", task, system, None, TrainConfig(depth=1, epochs=3), show_progress=False)
    assert linear.test_accuracy > 0.5  # chance is 0.1
    hybrid = train("pat", task, system, twin, TrainConfig(depth=2, epochs=3, mix=True), show_progress=False)
    assert hybrid.test_accuracy > 0.5
    assert hybrid.net.mixes[1].weight.shape == (64, 64)


def test_drives_are_what_each_layer_slot_sees(task):
    system = LeakyTanh(64)
    net, _, bodies = build("pat", task, system, _exact(system), TrainConfig(depth=2))
    net.use(bodies)
    pairs = net.drives(task.x_test[:6])
    assert [d.shape for d, _ in pairs] == [(6, 64), (6, 64)]
    assert torch.allclose(pairs[1][1], system(pairs[1][0]))
    assert all(float(d.min()) >= 0 and float(d.max()) <= 1 for d, _ in pairs)


class _Noisy(LeakyTanh):
    """LeakyTanh plus readout noise, recording the rows of every call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[int] = []
        self.gen = torch.Generator().manual_seed(5)

    def __call__(self, drive):
        self.rows.append(len(drive))
        return super().__call__(drive) + 0.1 * torch.randn(len(drive), self.n_out, generator=self.gen)


def test_passes_and_repeats_are_one_call_of_the_system_per_layer(task):
    system = _Noisy(16, n_out=8)
    cfg = TrainConfig(depth=2, mix=True, passes=3, repeats=4)
    net, _, bodies = build("pat", task, system, _exact(system), cfg)
    system.rows.clear()  # _exact measured its statistics
    assert net.readout.in_features == 3 * 8 and net.mixes[1].weight.shape == (3 * 16, 3 * 8)
    out = net.use(bodies)(task.x_test[:5])
    assert out.shape == (5, task.n_classes) and system.rows == [5 * 3 * 4] * 2
    pairs = net.drives(task.x_test[:5])
    assert [tuple(d.shape) for d, _ in pairs] == [(15, 16)] * 2 and [tuple(r.shape) for _, r in pairs] == [(15, 8)] * 2
    # four measurements averaged: the residual noise is half of one measurement's
    residual = pairs[0][1] - system.exact(pairs[0][0])
    assert 0.02 < float(residual.std()) < 0.08


@pytest.mark.parametrize("cfg", [TrainConfig(depth=1, mix=True, passes=4, repeats=2, norm="batch", epochs=2),
                                 TrainConfig(depth=1, encoder="concat", passes=2, epochs=2)])
def test_passes_and_repeats_train(task, cfg):
    system = LeakyTanh(96, gain=3.0, n_out=32)
    twin = _exact(system)
    start, _, bodies = build("pat", task, system, twin, cfg)
    before, _ = accuracy(start.use(bodies).eval(), task.x_test, task.y_test)
    after = train("pat", task, system, twin, cfg, show_progress=False).test_accuracy
    assert after > max(0.5, before + 0.2), (before, after)  # chance is 0.1


def test_passes_and_repeats_must_be_positive_ints():
    with pytest.raises(ValueError, match="passes must be an int >= 1, got 0"):
        TrainConfig(passes=0)
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        TrainConfig(repeats=1.5)


def test_a_deep_linear_baseline_is_tested_as_well_as_it_trains() -> None:
    """Its clipped drives carry no readout noise: near-constant features must not swamp the test pass."""
    task, system = load_task("digits"), LeakyTanh(64)
    result = train("linear", task, system, None, TrainConfig(depth=3, epochs=6, batch_size=64, seed=0),
                   show_progress=False)
    accuracies = [row["test_accuracy"] for row in result.history]
    assert accuracies[-1] > 0.85, accuracies  # torch's default eps gave 0.10 (chance) at the end


# linear-unclipped: the physics and the encoders' clip removed, so the same parameters form an affine net
UNCLIPPED_CONFIGS = [
    TrainConfig(depth=1, mix=True, passes=4),  # bench/pat.py's Fashion rows' shape
    TrainConfig(depth=2, mix=True, passes=2),
    TrainConfig(depth=2),
    TrainConfig(depth=1, encoder="concat", mix=True),
]


def _system(cfg):
    return LeakyTanh(96, n_out=32) if cfg.encoder == "concat" else LeakyTanh(64, n_out=32)  # 64 digit pixels fit


def _trained_like(trainer, task, system, cfg):
    """The net for `trainer` in test mode, its encoder gains raised so most drives would clip, BatchNorm statistics set."""
    net, train_bodies, test_bodies = build(trainer, task, system, None, cfg)
    with torch.no_grad():
        for encoder in net.encoders:
            encoder.a.mul_(8.0)  # drives spread far beyond the DAC's [0, 1]
        net.use(train_bodies).train()(task.x_train)  # running statistics, as after training
    return net.use(test_bodies).eval()


@pytest.mark.parametrize("cfg", UNCLIPPED_CONFIGS)
def test_linear_unclipped_has_the_physical_nets_parameters(task, cfg):
    system = _system(cfg)
    pat, _, _ = build("pat", task, system, _exact(system), cfg)
    net, train_bodies, test_bodies = build("linear-unclipped", task, system, None, cfg)
    assert _shapes(net) == _shapes(pat)
    for (name, a), b in zip(net.named_parameters(), pat.parameters(), strict=True):
        assert torch.equal(a, b), name  # same seed, same start: only the layer slots and the clip differ
    assert all(sum(p.numel() for p in body.parameters()) == 0 for body in train_bodies + test_bodies)


@pytest.mark.parametrize("cfg", UNCLIPPED_CONFIGS)
def test_linear_unclipped_is_affine_in_the_input_and_linear_is_not(task, cfg):
    """f(x + y) - f(y) = f(x) - f(0) for an affine f; `linear` with the same parameters clips and breaks it."""
    system = _system(cfg)
    x, y = task.x_test[:16], task.x_test[16:32]
    zero = torch.zeros_like(x)
    gaps = {}
    with torch.no_grad():
        for trainer in ("linear-unclipped", "linear"):
            f = _trained_like(trainer, task, system, cfg)
            lhs, rhs = f(x + y) - f(y), f(x) - f(zero)
            gaps[trainer] = float((lhs - rhs).abs().max() / rhs.abs().max())
    assert gaps["linear-unclipped"] < 1e-4, gaps
    assert gaps["linear"] > 0.05, gaps  # the clip makes the other baseline nonlinear: the check can tell


def test_linear_unclipped_is_listed_and_learns(task):
    assert "linear-unclipped" in TRAINERS
    system = LeakyTanh(64)
    result = train("linear-unclipped", task, system, None, TrainConfig(depth=1, mix=True, epochs=3),
                   show_progress=False)
    assert result.test_accuracy > 0.7, result.test_accuracy  # chance is 0.1; logistic regression ~0.9 here
    assert result.history[-1].get("queries", 0) == 0  # a digital net: the system is never driven
