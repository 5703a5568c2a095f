"""Where twin data comes from and how it is split by source: one per-source fit, training-drive pairs."""

import pytest
import torch
from toy_systems import Exact, LeakyTanh, TwoBoards

from pnn.data import Task, load_task
from pnn.nets import TrainConfig, training_pairs
from pnn.pat import PhysicalLayer
from pnn.twin import collect, collect_sourced, fit_per_source, fit_twins


def test_fit_per_source_fits_each_source_on_its_own_rows():
    system = TwoBoards(8)
    drives, responses, sources = collect_sourced(system, 120, chunk=32, show_progress=False)
    assert sorted(set(sources)) == ["board-a", "board-b"] and len(sources) == 120
    twins = fit_per_source(drives, responses, sources, epochs=1, hidden=(4,), show_progress=False)
    assert set(twins) == {"board-a", "board-b"}
    assert all(t.metadata["n_samples"] == 60 and t.metadata["source"] == s for s, t in twins.items())
    for source, twin in twins.items():  # its output statistics are its own board's rows' (less the holdout)
        own = responses[torch.from_numpy(sources == source)][:-6]
        assert torch.allclose(twin.y_mean, own.mean(0)), source
    alone = fit_per_source(drives, responses, None, epochs=1, hidden=(4,), show_progress=False)
    assert list(alone) == [""] and alone[""].metadata["n_samples"] == 120


def test_fit_twins_measures_and_splits_by_board():
    twins = fit_twins(TwoBoards(8), 100, chunk=25, epochs=2, hidden=(8,), show_progress=False)
    assert set(twins) == {"board-a", "board-b"} and twins["board-a"].metadata["system"]["class"] == "TwoBoards"
    single = fit_twins(LeakyTanh(8), 50, epochs=1, hidden=(4,), show_progress=False)
    assert list(single) == [""]


def test_collect_measures_the_drives_a_sampler_makes():
    system = LeakyTanh(8)
    drives, responses = collect(system, 40, chunk=16, show_progress=False, drives=lambda size, gen: torch.full((size, 8), 0.25))
    assert drives.shape == (40, 8) and bool((drives == 0.25).all())
    assert torch.allclose(responses, system(drives))


@pytest.fixture(scope="module")
def task():
    full = load_task("digits")
    return Task("digits-small", full.x_train[:200], full.y_train[:200], full.x_test, full.y_test, full.classes)


def test_training_pairs_are_measurements_at_the_drives_a_network_makes(task):
    system = LeakyTanh(64)
    calls = system.calls
    drives, responses = training_pairs(task, system, TrainConfig(depth=2), 300, chunk=100)
    assert drives.shape == (300, 64) and responses.shape == (300, 64)
    assert system.calls - calls == 3 * 2  # three chunks, one call per layer slot: nothing measured twice
    assert torch.allclose(responses, system(drives), atol=1e-6)  # every pair is a real measurement
    # Encoded images, not uniform noise: a pixel blank in every training image drives its sample at
    # the same level in every first-layer drive of a chunk (the first 50 rows: 50 images x 2 layers).
    blank = task.x_train.std(0) == 0
    assert int(blank.sum()) >= 2 and float(drives[:50, blank].std(0).max()) == 0.0
    again, _ = training_pairs(task, system, TrainConfig(depth=2), 300, chunk=100)
    assert torch.equal(drives, again)  # reproducible from the seed


def test_one_twin_backward_equals_the_per_source_path():
    """The single-twin fast path (no index copies) computes the same gradient as the grouped one."""
    pool = TwoBoards(8)
    twin = Exact(pool.boards["board-a"])
    drive = torch.rand(6, 8, requires_grad=True)
    PhysicalLayer(pool, twin)(drive).sum().backward()
    fast = drive.grad.clone()
    drive.grad = None
    PhysicalLayer(pool, {"board-a": twin, "board-b": twin})(drive).sum().backward()
    assert torch.allclose(fast, drive.grad)
