"""`pnn train --resume`: a run killed with SIGKILL mid-training ends with the uninterrupted run's weights, bit for bit.

Two real `pnn train` subprocesses on a noise-free simulated board (sim://, deterministic): one runs
to the end; the other is killed -9 while its second trainer (pipelined PAT with online twin
refinement: optimizer, schedule, RNGs, refined twin, pair window all in the checkpoint) is mid-run,
then resumed. The finished trainer is not re-run, the twin is not re-measured, no metric row is
duplicated, and every final weight is identical. RunLog keeps exactly the checkpointed rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from pnn.store import RunLog

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = """
[experiment]
name = "resume"
[task]
name = "digits"
[system]
url = "sim://electronic?seed=1&noise=off&n_in=64&n_out=16&timeout=30"  # a shared, loaded CPU computes it
n_in = 64
n_out = 16
[twin]
samples = 512
epochs = 5
hidden = [32]
[train]
trainers = ["digital", "pat-refine"]
depth = 2
epochs = 3
batch_size = 128
"""


def pnn_train(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "host"), str(ROOT / "protocol"), *sys.path])}
    code = "from pnn.cli import main; raise SystemExit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "train", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def rows(run: Path) -> list[dict]:
    return RunLog(run).rows()  # read while a run writes: a torn last line is skipped, not an error


def finish(proc: subprocess.Popen, limit: float) -> None:
    out, _ = proc.communicate(timeout=limit)
    assert proc.returncode == 0, out


def test_kill_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    toml = tmp_path / "exp.toml"
    toml.write_text(EXPERIMENT)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = pnn_train(str(toml), "--out", str(whole))
    victim = pnn_train(str(toml), "--out", str(killed))
    started = time.monotonic()
    # Kill once the second trainer has checkpointed its first epoch and is inside its second.
    while not any(r["trainer"] == "pat-refine" for r in rows(killed)):
        assert victim.poll() is None, victim.communicate()[0]
        time.sleep(0.2)
    first_epoch = time.monotonic() - started
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed / "summary.json").exists()
    twin_files = sorted([*killed.glob("twin*.pt"), *killed.glob("twins/*"), *killed.glob("twin-data/*")])
    twin_stamps = [p.stat().st_mtime_ns for p in twin_files]
    assert twin_files
    digital_stamp = (killed / "checkpoints" / "digital.seed0.pt").stat().st_mtime_ns
    # Limits from what was measured: the whole run is a few times its first trainer's first epoch.
    finish(pnn_train("--resume", str(killed)), limit=max(600.0, 20 * first_epoch))
    finish(reference, limit=max(600.0, 20 * first_epoch))

    assert [p.stat().st_mtime_ns for p in twin_files] == twin_stamps, "the twin was measured or fitted again"
    assert (killed / "checkpoints" / "digital.seed0.pt").stat().st_mtime_ns == digital_stamp, "digital was re-run"
    for trainer in ("digital", "pat-refine"):
        a = torch.load(whole / "checkpoints" / f"{trainer}.seed0.pt", weights_only=True)
        b = torch.load(killed / "checkpoints" / f"{trainer}.seed0.pt", weights_only=True)
        assert a["finished"] and b["finished"]
        for name, tensor in a["state_dict"].items():
            assert torch.equal(tensor, b["state_dict"][name]), f"{trainer}: {name} differs after resume"
    refined_a, refined_b = (torch.load(run / "checkpoints" / "pat-refine.seed0.pt", weights_only=True)["step"]["refiner"]
                            for run in (whole, killed))
    for source, twin in refined_a["twins"].items():
        for name, tensor in twin.items():
            assert torch.equal(tensor, refined_b["twins"][source][name]), f"refined twin {name} differs after resume"
    got = [(r["trainer"], r["epoch"]) for r in rows(killed)]
    assert got == [(t, e) for t in ("digital", "pat-refine") for e in (1, 2, 3)], got
    assert [r["queries"] for r in rows(killed)] == [r["queries"] for r in rows(whole)]
    assert [r["test_accuracy"] for r in rows(killed)] == [r["test_accuracy"] for r in rows(whole)]


def test_resume_of_a_folder_that_is_not_a_run_says_so(tmp_path: Path) -> None:
    proc = pnn_train("--resume", str(tmp_path))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "not a run folder" in out


def test_train_needs_an_experiment_or_resume() -> None:
    proc = pnn_train()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "--resume RUN_FOLDER" in out


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
