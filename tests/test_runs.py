"""Run folders: one evaluation behind every number, mean +- std over seeds, full records, honest reports."""

from __future__ import annotations

import json
from pathlib import Path

import _fixtures
import numpy as np
import pytest

TINY = _fixtures.TINY.replace('trainers = ["in-silico", "pat"]', 'trainers = ["digital", "in-silico"]') + "seeds = 2\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from pnn.cli import main

    folder = tmp_path_factory.mktemp("runs")
    (folder / "tiny.toml").write_text(TINY)
    assert main(["train", str(folder / "tiny.toml"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_every_number_comes_from_one_evaluation(run):
    summary = json.loads((run / "summary.json").read_text())
    predictions = json.loads((run / "predictions.json").read_text())
    truth = np.array(predictions["truth"])
    for trainer, per_seed in summary["accuracy_per_seed"].items():
        assert len(per_seed) == 2 and summary["accuracy"][trainer] == pytest.approx(np.mean(per_seed))
        assert summary["accuracy_std"][trainer] == pytest.approx(np.std(per_seed, ddof=1))
        last = {r["seed"]: r["test_accuracy"] for r in _rows(run) if r["trainer"] == trainer and r["epoch"] == 2}
        assert [last[s] for s in summary["seeds"]] == per_seed  # metrics.jsonl = the table
        from_predictions = [float((np.array(p) == truth).mean()) for p in predictions["predicted"][trainer]]
        assert from_predictions == pytest.approx(per_seed)  # the confusion matrix = the table
    for name in ("training.png", "twin.png", "confusion.png"):
        assert (run / name).stat().st_size > 10_000


def test_the_run_record_says_what_produced_the_numbers(run):
    record = json.loads((run / "run.json").read_text())
    assert set(record["versions"]) >= {"pnn", "git", "torch", "python", "numpy"}
    assert record["versions"]["torch"].split("+")[0].count(".") == 2
    assert record["seeds"] == [0, 1]
    assert record["boards"][0]["simulated"]["class"] == "Electronic"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["seeds"] == 2 and config["system"]["patience"] == 600


def test_train_out_onto_a_finished_run_is_refused_and_adds_no_rows(run, run_cli):
    before = (run / "metrics.jsonl").read_text()
    result = run_cli("train", str(run.parent / "tiny.toml"), "--out", str(run))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "already holds a run" in lines[0], result.stderr
    assert (run / "metrics.jsonl").read_text() == before


def test_report_on_an_incomplete_run_names_what_is_missing(run, run_cli, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "summary.json").unlink()
    (broken / "predictions.json").unlink()
    result = run_cli("report", str(broken))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "summary.json" in lines[0] and "predictions.json" in lines[0] and "metrics.jsonl" not in lines[0]
    only_config = tmp_path / "only-config"
    only_config.mkdir()
    shutil.copy(run / "config.json", only_config)
    result = run_cli("report", str(only_config))
    assert result.returncode == 2 and "wrote nothing" in result.stderr and "metrics.jsonl" in result.stderr
    assert run_cli("report", str(run)).returncode == 0  # a complete run reports cleanly
