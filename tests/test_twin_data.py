"""Where twin data comes from and how it is split by source: one per-source fit, training-drive pairs."""

import numpy as np
import pytest
import torch
from toy_systems import Exact, LeakyTanh, TwoBoards

from pnn import physics, twin_data
from pnn.data import Task, load_task
from pnn.nets import TrainConfig, training_pairs
from pnn.pat import PhysicalLayer
from pnn.twin import collect, collect_sourced, fit, fit_per_source, fit_twins, load_twins, save_twins
from pnn.twin_data import grad_cosine, sampler


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


def test_twins_fitted_on_stored_sources_save_and_load(tmp_path):
    # A store gives its sources back as a numpy string array (DataStore.load_extra): a twin's metadata
    # held np.str_, and `pnn train` against one board died at the end loading its own twin (weights_only).
    drives, responses = torch.rand(40, 4), torch.rand(40, 2)
    sources = np.array(["serial:///dev/ttyACM0"] * 40)
    save_twins(fit_per_source(drives, responses, sources, epochs=1, hidden=(4,), show_progress=False), tmp_path)
    (twin,) = load_twins(tmp_path).values()
    assert twin.metadata["source"] == "serial:///dev/ttyACM0" and type(twin.metadata["source"]) is str


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


def test_mixed_twin_data_from_the_config_is_half_uniform_half_training_drives(tmp_path, task):
    from pnn import config, experiment

    raw = {"task": {"name": "digits"}, "system": {"kind": "electronic"},
           "twin": {"samples": 300, "drives": "mixed"}, "train": {"depth": 2}}
    cfg = config.parse(raw).as_dict()
    system = experiment.make_system(cfg["system"])
    store = experiment.collect_data(cfg, system, tmp_path, task=task, show_progress=False)
    drives, _ = store.load()
    assert drives.shape == (300, 64) and store.meta["drives"] == "mixed"
    first = drives[:256]  # one chunk: 128 uniform rows, then 128 measured through networks of [train]'s shape
    assert not ((first[:128] == 0) | (first[:128] == 1)).any()
    assert ((first[128:] == 0) | (first[128:] == 1)).mean() > 0.2  # encoded images clip; uniform noise never
    again = experiment.collect_data(cfg, system, tmp_path, task=task, show_progress=False)  # resumes: nothing new
    assert len(again) == 300 and (again.load()[0] == drives).all()


def test_training_twin_data_keeps_each_rows_source():
    pool = TwoBoards(8)
    tiny = Task("t", torch.rand(40, 8), torch.randint(2, (40,)), torch.rand(8, 8), torch.randint(2, (8,)), ["a", "b"])
    drives, responses, sources = collect_sourced(pool, 50, chunk=25, show_progress=False,
                                                 pairs=sampler("training", pool, tiny, TrainConfig(depth=2)))
    assert drives.shape == (50, 8) and len(sources) == 50 and set(sources) == {"board-a", "board-b"}
    for source in ("board-a", "board-b"):  # every row is the named board's own measurement of its drive
        rows = torch.from_numpy(sources == source)
        assert torch.allclose(responses[rows], pool.boards[source](drives[rows]), atol=1e-6)


def test_jitter_gives_training_drive_twins_the_gradient_along_what_training_inputs_never_vary(monkeypatch, task):
    """Digits leave pixels blank in every image, so their drive entries never vary in training pairs:
    a twin fitted there alone has an unconstrained gradient along them. Jitter spans those directions,
    and the twin's vjp at (unjittered) training drives agrees better with the exact model's."""
    system = physics.Optical(n_in=64, n_out=32, seed=0)
    cfg = TrainConfig(depth=1)
    monkeypatch.setattr(twin_data, "JITTER", 0.0)
    at, _ = collect(system, 256, seed=7, show_progress=False, pairs=sampler("training", system, task, cfg))
    cosine = {}
    for jitter in (0.0, 0.1):
        monkeypatch.setattr(twin_data, "JITTER", jitter)
        d, r = collect(system, 512, seed=0, show_progress=False, pairs=sampler("training", system, task, cfg))
        twin = fit(d, r, hidden=(64, 64), epochs=30, show_progress=False)
        cosine[jitter] = grad_cosine(twin, system.ideal, at)
    assert cosine[0.1] > cosine[0.0] + 0.02, cosine
