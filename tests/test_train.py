"""Each trainer on a tiny budget, on a system defined outside the project; every query counted, once.

"Improves over its start": the same network (same seed) before any step and after three epochs.
"Counted": a simulated board's own RUN-sample statistics against the queries the rows report.
"""

import json

import pytest
import torch
from torch.nn.utils import parameters_to_vector
from toy_systems import LeakyTanh

from pnn import fit_twin
from pnn.counting import counting
from pnn.data import Task, load_task
from pnn.devices import connect
from pnn.train import TrainConfig, accuracy, train
from pnn.trainers import make_step


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
    checkpoint = torch.load(tmp_path / "checkpoints" / f"{trainer}.seed0.pt", weights_only=True)
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


NEW = ["pat-pipelined", "pat-refine", "pat-dat", "spsa", "pepg", "cma-es", "local", "forward-forward"]


@pytest.mark.parametrize("trainer", NEW)
def test_new_trainer_improves_over_its_start(setup, trainer) -> None:
    task, system, twin = setup
    start = train(trainer, task, system, twin, TrainConfig(depth=2, epochs=0), show_progress=False)
    before = accuracy(start.net, task.x_test, task.y_test)[0]
    result = train(trainer, task, system, twin, TrainConfig(depth=2, epochs=3), show_progress=False)
    assert result.test_accuracy > before + 0.2, f"{trainer}: {before:.3f} -> {result.test_accuracy:.3f}"
    queries = [r["queries"] for r in result.history]
    assert queries == sorted(queries) and queries[0] > 0


def test_model_free_trainers_never_touch_a_twin(setup) -> None:
    task, system, _ = setup
    for trainer in ("spsa", "pepg", "cma-es"):  # forward-forward: twin-free in the tests below
        result = train(trainer, task, system, None, TrainConfig(depth=1, epochs=1), show_progress=False)
        assert result.test_accuracy > 0.2
    with pytest.raises(ValueError, match="needs a system and a twin"):
        train("pat-dat", task, system, None)


TWO_PASSES = {"spsa", "pepg", "forward-forward"}  # theta +- c d, mu +- eps; forward-forward: positive and negative
PROBE = {"spsa": 256, "pepg": 256, "forward-forward": 0}  # what a twin-free step measures first (else: the twin's data)


@pytest.mark.parametrize("trainer", ["spsa", "pepg", "forward-forward", "pat", "pat-pipelined"])
def test_query_counts_equal_the_run_samples_the_board_saw(setup, trainer) -> None:
    task, _, _ = setup
    task = Task("tiny", task.x_train[:96], task.y_train[:96], task.x_test[:40], task.y_test[:40], task.classes)
    # The in-process sim computes on this shared CPU: under load a reply can take seconds, not the default 1 s.
    with connect("sim://electronic?seed=2&n_in=64&n_out=16&timeout=30") as board:
        twin = None
        if trainer not in PROBE:
            counted = counting(board, "twin")
            twin = fit_twin(counted, 200, chunk=64, epochs=2, hidden=(16,), show_progress=False)
            twin.metadata["queries"] = counted.rows["twin"]
        result = train(trainer, task, board, twin, TrainConfig(depth=2, epochs=2, batch_size=32), show_progress=False)
        last = result.history[-1]
        assert board.stats()["samples"] == last["queries"] + last["eval_queries"]
    steps_per_epoch, passes = 3, 2 if trainer in TWO_PASSES else 1
    training = 2 * 96 * 2 * passes  # epochs x rows x depth x passes
    labels = 10 if trainer == "forward-forward" else 1  # forward-forward's test pass tries every label
    assert last["eval_queries"] == 2 * 40 * 2 * labels and steps_per_epoch == 96 // 32
    assert last["queries"] == training + PROBE.get(trainer, 200)  # + probe or twin data


def test_pepg_moves_the_upstream_parameters_downhill_and_adapts_sigma(setup) -> None:
    """The PEPG estimate alone (the readout put back after every step) lowers the loss on the batch it saw."""
    task, system, _ = setup
    step = make_step("pepg", task, system, None, TrainConfig(depth=1, epochs=1), sigma=0.05)
    step.net.use(step.train_bodies).train()
    idx, theta0, sigma0 = torch.arange(64), parameters_to_vector(step.upstream).clone(), step.sigma.clone()
    readout0 = [p.detach().clone() for p in step.readout]
    for k in range(40):
        step.step(k, idx)
        with torch.no_grad():
            for p, q in zip(step.readout, readout0, strict=True):
                p.copy_(q)
    after = float(step.loss_at(parameters_to_vector(step.upstream).detach(), idx)[0])
    before = float(step.loss_at(theta0, idx)[0])
    assert after < before - 0.05, f"loss {before:.3f} -> {after:.3f} with the readout held at its start"
    assert not torch.equal(step.sigma, sigma0) and bool((step.sigma > 0).all())


def test_forward_forward_learns_only_after_the_physics(setup) -> None:
    task, system, _ = setup
    net = train("forward-forward", task, system, None, TrainConfig(depth=2, epochs=1), show_progress=False).net
    start = train("forward-forward", task, system, None, TrainConfig(depth=2, epochs=0), show_progress=False).net
    assert all(not p.requires_grad for p in net.encoders.parameters())
    assert torch.equal(net.encoders[0].a, start.encoders[0].a)  # upstream of the physics: as drawn
    assert not torch.equal(net.layers[0].weight, start.layers[0].weight)  # what learns sits after the physics


class _Cut(Exception):
    """Stands in for a kill: raised from inside a step."""


@pytest.mark.parametrize("trainer", ["pepg", "forward-forward"])
def test_resume_mid_run_gives_the_uninterrupted_weights(setup, trainer, tmp_path, monkeypatch) -> None:
    """Cut in the second epoch, resumed from the first epoch's checkpoint: sigma, baseline, RNGs all restored."""
    import pnn.engine as engine

    task, system, _ = setup  # LeakyTanh is deterministic: the resumed run must match to the bit
    cfg = TrainConfig(depth=2, epochs=2)
    whole = train(trainer, task, system, None, cfg, run_dir=tmp_path / "whole", show_progress=False)
    fit, per_epoch = engine.fit, -(-len(task.x_train) // cfg.batch_size)

    def cut_in_epoch_two(name, step, *args, **kwargs):
        original, calls = step.step, [0]

        def stepping(k, idx):
            calls[0] += 1
            if calls[0] > per_epoch + 3:
                raise _Cut
            return original(k, idx)

        step.step = stepping
        return fit(name, step, *args, **kwargs)

    monkeypatch.setattr(engine, "fit", cut_in_epoch_two)
    with pytest.raises(_Cut):
        train(trainer, task, system, None, cfg, run_dir=tmp_path / "cut", show_progress=False)
    monkeypatch.undo()
    resumed = train(trainer, task, system, None, cfg, run_dir=tmp_path / "cut", resume=True, show_progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert [r["test_accuracy"] for r in resumed.history] == [r["test_accuracy"] for r in whole.history]
    assert [r["queries"] for r in resumed.history] == [r["queries"] for r in whole.history]
    for name, tensor in whole.net.state_dict().items():
        assert torch.equal(tensor, resumed.net.state_dict()[name]), f"{trainer}: {name} differs after resume"
