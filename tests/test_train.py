"""Each trainer on a tiny budget, on a system defined outside the project."""

import json

import pytest
import torch
from toy_systems import LeakyTanh

from pnn import fit_twin
from pnn.data import Task, load_task
from pnn.train import TrainConfig, train


@pytest.fixture(scope="module")
def setup():
    task = load_task("digits")
    small = Task("digits-small", task.x_train[:400], task.y_train[:400], task.x_test, task.y_test, task.classes)
    system = LeakyTanh(64, gain=3.0)
    twin = fit_twin(system, 600, epochs=20, hidden=(64,), show_progress=False)
    return small, system, twin


@pytest.mark.parametrize("trainer", ["digital", "in-silico", "pat"])
def test_trainer_learns_on_tiny_budget(setup, trainer, tmp_path):
    task, system, twin = setup
    result = train(trainer, task, system, twin, TrainConfig(depth=2, epochs=3), run_dir=tmp_path, show_progress=False)
    assert result.test_accuracy > 0.5, f"{trainer}: {result.test_accuracy}"  # chance is 0.1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["trainer"] == trainer for r in rows)
    checkpoint = torch.load(tmp_path / "checkpoints" / f"{trainer}.pt", weights_only=True)
    assert checkpoint["epoch"] == 3 and "readout.weight" in checkpoint["state_dict"]


def test_pat_evaluates_on_the_system_not_the_twin(setup):
    task, system, twin = setup
    calls = system.calls
    train("pat", task, system, twin, TrainConfig(depth=2, epochs=1), show_progress=False)
    batches = -(-len(task.x_train) // 32)
    assert system.calls - calls >= 2 * batches  # two layers per training batch, plus evaluation


def test_concat_encoder_and_bad_trainer(setup):
    task, _, _ = setup
    system = LeakyTanh(96, gain=0.5, n_out=32)
    twin = fit_twin(system, 300, epochs=20, hidden=(32,), show_progress=False)
    result = train("pat", task, system, twin, TrainConfig(depth=1, epochs=3, encoder="concat"), show_progress=False)
    assert result.test_accuracy > 0.4
    assert result.net.encoders[0].theta.shape == (32,)  # 64 data bins + 32 trainable parameter bins
    with pytest.raises(ValueError, match="unknown trainer"):
        train("magic", task, system, twin)  # type: ignore[arg-type]


def test_drive_width_must_be_a_multiple_of_the_input(setup):
    task, _, _ = setup
    system = LeakyTanh(100)
    twin = fit_twin(system, 100, epochs=1, hidden=(8,), show_progress=False)
    with pytest.raises(ValueError, match="multiple of 64"):
        train("pat", task, system, twin, TrainConfig(epochs=1), show_progress=False)
