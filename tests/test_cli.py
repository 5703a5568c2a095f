"""The pnn command as a user meets it: help, demo/train/report on a run folder, one-line errors."""

import json
import subprocess

import pytest
from _fixtures import TINY

from pnn.cli import main


def test_console_script_is_installed():
    result = subprocess.run(["pnn", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout and "train" in result.stdout


@pytest.mark.parametrize("command", ["demo", "train", "report"])
def test_help_for_each_command(run_cli, command):
    result = run_cli(command, "--help")
    assert result.returncode == 0 and f"usage: pnn {command}" in result.stdout


def test_train_writes_a_complete_run_folder_and_report_regenerates_it(tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", str(experiment), "--out", str(run)]) == 0
    for name in ("config.json", "metrics.jsonl", "summary.json", "twin.pt", "training.png", "twin.png", "confusion.png"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["accuracy"]) == {"in-silico", "pat"} and summary["accuracy"]["pat"] > 0.2
    assert (run / "checkpoints" / "pat.seed0.pt").exists()
    (run / "training.png").unlink()
    assert main(["report", str(run)]) == 0
    assert (run / "training.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[train\nepochs = 2", "not valid TOML"),
        ("[training]\nepochs = 2", "unknown section [training]"),
        ("[train]\nepoch = 2", "unknown key 'epoch' in [train]"),
        ("[system]\nkind = 'quantum'", "[system] kind = 'quantum'"),
        ("[task]\nname = 'vowels'\ndata = '/nonexistent/v.csv'", "there is no /nonexistent/v.csv"),
    ],
)
def test_malformed_experiment_is_one_line_and_exit_2(run_cli, tmp_path, text, expected):
    experiment = tmp_path / "bad.toml"
    experiment.write_text(text)
    result = run_cli("train", str(experiment), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_bad_arguments_are_one_line(run_cli, tmp_path):
    assert run_cli("train", str(tmp_path / "missing.toml")).returncode == 2
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2 and "not a run folder" in result.stderr
    result = run_cli("demo", "--data", "nope.csv")  # the electronic demo's digits read no data file
    assert result.returncode == 2 and "--data 'nope.csv'" in result.stderr


def test_usage_mistakes_are_one_line_pointing_at_help(run_cli):
    result = run_cli("demo", "--system", "quantum")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid choice" in lines[0] and "pnn demo --help" in lines[0]


def test_collect_fit_twin_and_eval(run_cli, tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    out = tmp_path / "bench"
    result = run_cli("collect", str(experiment), "--out", str(out), "--samples", "600")
    assert result.returncode == 0 and "600 samples in 3 verified chunks" in result.stdout
    result = run_cli("fit-twin", str(experiment), "--out", str(out))
    assert result.returncode == 0 and "held-out NRMSE" in result.stdout and (out / "twin.pt").exists()
    result = run_cli("eval", str(out))
    assert result.returncode == 2 and "no checkpoint" in result.stderr
    # train reuses the fitted twin in that folder, then eval re-measures on the system
    assert run_cli("train", str(experiment), "--out", str(out)).returncode == 0
    result = run_cli("eval", str(out), "--trainer", "pat")
    assert result.returncode == 0 and "test accuracy on the system now" in result.stdout


def test_train_on_a_pool_fits_one_twin_per_board(run_cli, tmp_path):
    experiment = tmp_path / "pool.toml"
    experiment.write_text(TINY.replace('kind = "electronic"', 'url = ["sim://electronic?seed=1&n_out=16", "sim://electronic?seed=2&n_out=16"]'))
    run = tmp_path / "run"
    assert run_cli("train", str(experiment), "--out", str(run)).returncode == 0
    assert (run / "devices.png").exists() and len(json.loads((run / "devices.json").read_text())) == 2
    index = json.loads((run / "twins" / "index.json").read_text())
    assert len(index) == 2 and all((run / "twins" / name).exists() for name in index.values())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["accuracy"]["pat"] > 0.2
    assert run_cli("eval", str(run)).returncode == 0


def test_train_against_the_firmware_under_micropython_over_a_pty(run_cli, tmp_path):
    from pnn.boards.simboard import SimBoard

    with SimBoard(seed=4, folder=tmp_path / "board") as board:
        assert board.url.startswith("serial://")
        experiment = tmp_path / "serial.toml"
        experiment.write_text(TINY.replace('kind = "electronic"', f'url = "{board.url}?n_in=64&n_out=16"'))
        run = tmp_path / "run"
        result = run_cli("train", str(experiment), "--out", str(run))
        assert result.returncode == 0, result.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert summary["system"].startswith("serial://") and summary["accuracy"]["pat"] > 0.2
        board_record = json.loads((run / "run.json").read_text())["boards"][0]  # the HELLO it answered
        assert board_record["id"] == "sim-4" and board_record["hello"]["device"] == "sim-4"
        assert board_record["hello"]["fw"] and board_record["hello"]["caps"]["adc_bits"] == 12
        assert set(board_record["calibration"]) == {"dac_lo", "dac_hi", "adc_lo", "adc_hi"}
        assert board.proc.poll() is None  # the board is still serving
