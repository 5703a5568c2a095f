"""PEPG and forward-forward on a tiny budget: each improves over its start, and every query is counted once.

"Improves over its start": the same network (same seed) before any step and after three epochs.
"Counted": a simulated board's own RUN-sample statistics against the queries the rows report.
"""

import pytest
import torch
from toy_systems import LeakyTanh

from pnn.data import Task, load_task
from pnn.devices import connect
from pnn.train import TrainConfig, accuracy, train
from pnn.trainers import make_step


@pytest.fixture(scope="module")
def setup():
    task = load_task("digits")
    small = Task("digits-small", task.x_train[:400], task.y_train[:400], task.x_test, task.y_test, task.classes)
    return small, LeakyTanh(64, gain=3.0)


PROBE = {"pepg": 256, "forward-forward": 0}  # the response-statistics probe a model-free step measures first


@pytest.mark.parametrize("trainer", ["pepg", "forward-forward"])
def test_trainer_improves_over_its_start_without_a_twin(setup, trainer) -> None:
    task, system = setup
    start = train(trainer, task, system, None, TrainConfig(depth=2, epochs=0), show_progress=False)
    before = accuracy(start.net, task.x_test, task.y_test)[0]
    result = train(trainer, task, system, None, TrainConfig(depth=2, epochs=3), show_progress=False)
    assert result.test_accuracy > before + 0.3, f"{trainer}: {before:.3f} -> {result.test_accuracy:.3f}"
    # Two passes a batch (PEPG: mu + eps and mu - eps; forward-forward: positive and negative), two layers each.
    assert [r["queries"] for r in result.history] == [PROBE[trainer] + e * 400 * 2 * 2 for e in (1, 2, 3)]
    labels = 10 if trainer == "forward-forward" else 1  # forward-forward tests every label
    assert [r["eval_queries"] for r in result.history] == [e * len(task.x_test) * 2 * labels for e in (1, 2, 3)]


def test_pepg_moves_the_upstream_parameters_downhill_and_adapts_sigma(setup) -> None:
    """The PEPG estimate alone (the readout put back after every step) lowers the loss on the batch it saw."""
    task, system = setup
    step = make_step("pepg", task, system, None, TrainConfig(depth=1, epochs=1), sigma=0.05)
    step.net.use(step.train_bodies).train()
    idx = torch.arange(64)
    theta0 = torch.nn.utils.parameters_to_vector(step.upstream).clone()
    readout0 = [p.detach().clone() for p in step.readout]
    sigma0 = step.sigma.clone()
    for k in range(40):
        step.step(k, idx)
        with torch.no_grad():
            for p, q in zip(step.readout, readout0, strict=True):
                p.copy_(q)
    after = float(step.loss_at(torch.nn.utils.parameters_to_vector(step.upstream).detach(), idx)[0])
    before = float(step.loss_at(theta0, idx)[0])
    assert after < before - 0.05, f"loss {before:.3f} -> {after:.3f} with the readout held at its start"
    assert not torch.equal(step.sigma, sigma0) and bool((step.sigma > 0).all())


def test_forward_forward_never_trains_upstream_of_the_physics(setup) -> None:
    task, system = setup
    result = train("forward-forward", task, system, None, TrainConfig(depth=2, epochs=1), show_progress=False)
    net = result.net
    assert all(not p.requires_grad for p in net.encoders.parameters())
    start = train("forward-forward", task, system, None, TrainConfig(depth=2, epochs=0), show_progress=False).net
    assert torch.equal(net.encoders[0].a, start.encoders[0].a)  # as drawn
    assert not torch.equal(net.layers[0].weight, start.layers[0].weight)  # what learns sits after the physics


@pytest.mark.parametrize("trainer", ["pepg", "forward-forward"])
def test_query_counts_equal_the_run_samples_the_board_saw(setup, trainer) -> None:
    task, _ = setup
    task = Task("tiny", task.x_train[:96], task.y_train[:96], task.x_test[:40], task.y_test[:40], task.classes)
    # The in-process sim computes on this shared CPU: under load a reply can take seconds, not the default 1 s.
    with connect("sim://electronic?seed=2&n_in=64&n_out=16&timeout=30") as board:
        result = train(trainer, task, board, None, TrainConfig(depth=2, epochs=2, batch_size=32), show_progress=False)
        last = result.history[-1]
        assert board.stats()["samples"] == last["queries"] + last["eval_queries"]
    assert last["queries"] == 2 * 96 * 2 * 2 + PROBE[trainer]  # epochs x rows x depth x passes (+ probe)
    assert last["eval_queries"] == 2 * 40 * 2 * (10 if trainer == "forward-forward" else 1)
