"""The trainers beyond PAT (pnn.trainers): each learns on a tiny budget; every query is counted, once.

"Improves over its start": the same network (same seed) before any step and after three epochs.
"Counted": a simulated board's own RUN-sample statistics against the queries the rows report.
"""

from __future__ import annotations

import json

import pytest
import torch
from toy_systems import LeakyTanh

from pnn import fit_twin
from pnn.data import Task, load_task
from pnn.devices import connect
from pnn.store import RunLog
from pnn.train import TrainConfig, accuracy, train
from pnn.trainers.count import counting

NEW = ["pat-pipelined", "pat-refine", "pat-dat", "spsa", "cma-es", "local"]


@pytest.fixture(scope="module")
def setup():
    task = load_task("digits")
    small = Task("digits-small", task.x_train[:400], task.y_train[:400], task.x_test, task.y_test, task.classes)
    system = LeakyTanh(64, gain=3.0)
    twin = fit_twin(system, 600, epochs=20, hidden=(64,), show_progress=False)
    return small, system, twin


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
    for trainer in ("spsa", "cma-es"):
        result = train(trainer, task, system, None, TrainConfig(depth=1, epochs=1), show_progress=False)
        assert result.test_accuracy > 0.2
    with pytest.raises(ValueError, match="needs a system and a twin"):
        train("pat-dat", task, system, None)


@pytest.mark.parametrize("trainer", ["spsa", "pat", "pat-pipelined"])
def test_query_counts_equal_the_run_samples_the_board_saw(setup, trainer) -> None:
    task, _, _ = setup
    task = Task("tiny", task.x_train[:96], task.y_train[:96], task.x_test[:40], task.y_test[:40], task.classes)
    with connect("sim://electronic?seed=2&n_in=64&n_out=16") as board:
        twin = None
        if trainer != "spsa":
            counted = counting(board, "twin")
            twin = fit_twin(counted, 200, chunk=64, epochs=2, hidden=(16,), show_progress=False)
            twin.metadata["queries"] = counted.rows["twin"]
        result = train(trainer, task, board, twin, TrainConfig(depth=2, epochs=2, batch_size=32), show_progress=False)
        last = result.history[-1]
        assert board.stats()["samples"] == last["queries"] + last["eval_queries"]
    steps_per_epoch, passes = 3, 2 if trainer == "spsa" else 1  # SPSA measures each batch at theta +- c d
    training = 2 * 96 * 2 * passes  # epochs x rows x depth x passes
    assert last["eval_queries"] == 2 * 40 * 2 and steps_per_epoch == 96 // 32
    assert last["queries"] == training + (256 if trainer == "spsa" else 200)  # + probe or twin data


def test_runlog_keeps_exactly_the_checkpointed_rows(tmp_path) -> None:
    log = RunLog(tmp_path)
    for trainer in ("a", "b"):
        for epoch in (1, 2, 3):
            log.append({"trainer": trainer, "epoch": epoch})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"trainer": "b", "ep')  # torn by a kill mid-write
    log.begin("b", [{"trainer": "b", "epoch": 1}, {"trainer": "b", "epoch": 2}])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["trainer"], r["epoch"]) for r in rows] == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]
    log.save("b", {"epoch": 2, "w": torch.ones(3)})
    assert log.load("b")["epoch"] == 2 and log.load("c") is None
    assert not list(tmp_path.glob("**/.*.tmp"))
