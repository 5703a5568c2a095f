"""pnn.pipeline: pipelined PAT (stale by exactly p steps; p=0 is plain PAT), per-board twins, online refinement."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pnn.data import Task, digits
from pnn.devices import DevicePool, connect
from pnn.pipeline import PipelineConfig, TwinRefiner, fit_twins, train_pipelined
from pnn.store import DataStore
from pnn.train import TrainConfig, train
from pnn.twin import fit, nrmse

BOARD = "sim://electronic?seed={seed}&n_in=64&n_out=16&noise=off&substeps=1"
CFG = TrainConfig(depth=2, epochs=2, batch_size=24, lr=0.03, seed=0)


@pytest.fixture(scope="module")
def task() -> Task:
    t = digits()
    return Task("digits", t.x_train[:96], t.y_train[:96], t.x_test[:48], t.y_test[:48], t.classes)


@pytest.fixture(scope="module")
def pool():
    with DevicePool([BOARD.format(seed=s) for s in (1, 2)]) as p:
        yield p


@pytest.fixture(scope="module")
def twins(pool):
    return fit_twins(pool, 600, epochs=30, hidden=(32, 32), show_progress=False)


def test_fit_twins_gives_each_board_a_twin_from_its_own_rows(pool, twins) -> None:
    assert sorted(twins) == sorted(pool.ids)
    for board_id, twin in twins.items():
        assert twin.metadata["source"] == board_id and 150 < twin.metadata["n_train"] + twin.metadata["n_test"] < 450
    a, b = (t.state_dict() for t in twins.values())
    assert any(not torch.equal(a[k], b[k]) for k in a), "two boards, two different twins"


@pytest.mark.parametrize(("micro_batches", "norm"), [(1, "twin"), (2, "twin"), (1, "batch")])
def test_pipeline_zero_is_exactly_plain_pat(task, twins, micro_batches: int, norm: str) -> None:
    """Weights and buffers (BatchNorm's running statistics with norm='batch') match plain PAT."""
    cfg = dataclasses.replace(CFG, norm=norm)
    with connect(BOARD.format(seed=1)) as board:  # one deterministic board: both trainers see the same numbers
        twin = twins[next(iter(twins))]
        plain = train("pat", task, board, twin, cfg, show_progress=False)
        pcfg = PipelineConfig(pipeline=0, micro_batches=micro_batches)
        piped = train_pipelined(task, board, twin, cfg, pcfg, show_progress=False)
    for (name, a), (_, b) in zip(plain.net.state_dict().items(), piped.net.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    assert [r["test_accuracy"] for r in plain.history] == [r["test_accuracy"] for r in piped.history]
    assert {r["max_staleness"] for r in piped.history} == {0}


def test_pipeline_one_runs_one_step_stale_and_stores_every_pair(task, pool, twins, tmp_path) -> None:
    store = DataStore(tmp_path / "pairs")
    pcfg = PipelineConfig(pipeline=1, micro_batches=2)
    result = train_pipelined(task, pool, twins, CFG, pcfg, store=store, show_progress=False)
    assert [r["max_staleness"] for r in result.history] == [1, 1]
    assert all(0 < r["busy"] for r in result.history)
    assert store.verify() == CFG.epochs * len(task.x_train) * CFG.depth  # each layer of each step, once
    assert result.test_accuracy > 0.15


def test_micro_batches_with_batch_norm_are_refused(task, twins) -> None:
    with connect(BOARD.format(seed=1)) as board, pytest.raises(ValueError, match="micro_batches = 2 needs norm"):
        train_pipelined(task, board, twins[next(iter(twins))], dataclasses.replace(CFG, norm="batch"),
                        PipelineConfig(pipeline=0, micro_batches=2), show_progress=False)


def test_bad_pipeline_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="pipeline must be >= 0"):
        PipelineConfig(pipeline=-1)
    with pytest.raises(ValueError, match="micro_batches must be >= 1"):
        PipelineConfig(micro_batches=0)


def test_online_refinement_moves_a_twin_towards_its_board(pool) -> None:
    gen = torch.Generator().manual_seed(0)
    other = connect(BOARD.format(seed=7))  # a different board's twin: the wrong one for board seed 1
    try:
        drive = torch.rand(400, 64, generator=gen)
        wrong = fit(drive, other(drive), epochs=30, hidden=(32, 32), show_progress=False)
    finally:
        other.close()
    board = pool.devices[0]
    test_drive = torch.rand(200, 64, generator=gen)
    test_response = board(test_drive)
    before, _ = nrmse(wrong(test_drive).detach(), test_response)
    refiner = TwinRefiner({board.id: wrong}, PipelineConfig(refine_steps=100, refine_lr=2e-3))
    for _ in range(4):  # pairs as training would produce them
        d = torch.rand(96, 64, generator=gen)
        refiner.add(d, board(d), [board.id] * 96)
    refiner.refine(gen)
    after, _ = nrmse(wrong(test_drive).detach(), test_response)
    assert after < 0.7 * before
    assert refiner.history and board.id in refiner.history[0]
    assert not any(p.requires_grad for p in wrong.parameters()), "a refined twin stays frozen for PAT"
