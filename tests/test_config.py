"""One validated configuration: every bad value is one line naming key, value and what is allowed, exit 2,
before anything is measured (a counting simulated board proves zero RUNs), and TOML paths resolve
against the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures import TINY

from pnn import config, physics

ROOT = Path(__file__).resolve().parents[1]


class CountingBoard(physics.Electronic):
    """The simulated electronic board, counting what a real board would: every RUN (a measured batch)."""

    runs = 0
    made = 0

    def __init__(self, *args, **kwargs) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)

    def __call__(self, drive):
        type(self).runs += 1
        return super().__call__(drive)


@pytest.fixture
def counting(monkeypatch):
    CountingBoard.runs = CountingBoard.made = 0
    monkeypatch.setitem(physics.KINDS, "electronic", CountingBoard)
    return CountingBoard


def _toml(tmp_path: Path, replace: tuple[str, str] = ("", ""), append: str = "") -> Path:
    path = tmp_path / "exp.toml"
    text = TINY.replace(*replace) if replace[0] else TINY
    path.write_text(text + append)
    return path


BAD = {
    # id: (toml replace, toml append, flags, what the one line must say)
    "epochs-flag-negative": (("", ""), "", ["--epochs", "-3"], "--epochs -3 ([train] epochs): must be an integer >= 1"),
    "epochs-a-word": (("epochs = 2", 'epochs = "ten"'), "", [], "[train] epochs = 'ten'"),
    "url-a-number": (('kind = "electronic"', "url = 5"), "", [], "[system] url = 5"),
    "unknown-trainer": (('trainers = ["in-silico", "pat"]', 'trainers = ["in-silico", "magic"]'), "", [],
                        "'magic' is not one"),
    "unknown-trainer-flag": (("", ""), "", ["--trainers", "pat,pta"], "(did you mean 'pat'?)"),
    "lr-negative": (("epochs = 2", "epochs = 2\nlr = -1"), "", [], "[train] lr = -1: must be a number > 0"),
    "seeds-zero": (("", ""), "", ["--seeds", "0"], "--seeds 0"),
    "data-ignored": (("", ""), "", ["--data", "nope.csv"], "--data 'nope.csv'"),
    "data-missing": (('name = "tiny"', 'name = "tiny"\n[task]\nname = "vowels"\ndata = "nope.csv"'), "", [],
                     "there is no "),
    "patience-negative": (("", ""), "", ["--patience", "-5"], "--patience -5.0"),
    "noise-misspelt": (("", ""), "[system.noise]\nadditiv = 0.1\n", [], "(did you mean 'additive'?)"),
    "depth-zero": (("depth = 2", "depth = 0"), "", [], "[train] depth = 0"),
    "twin-kind": (("hidden = [32]", 'hidden = [32]\nkind = "lstm"'), "", [], "[twin] kind = 'lstm'"),
    "batch-fraction": (("epochs = 2", "epochs = 2\nbatch_size = 2.5"), "", [], "[train] batch_size = 2.5"),
    "n_in-misfit": (("n_in = 64", "n_in = 60"), "", [], "n_in must be a multiple of"),
    "key-misspelt": (("epochs = 2", "epoch = 2"), "", [], "unknown key 'epoch' in [train] (did you mean 'epochs'?)"),
    "twin-drives": (("hidden = [32]", 'hidden = [32]\ndrives = "train"'), "", [],
                    "[twin] drives = 'train': must be one of uniform, training, mixed (did you mean 'training'?)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_value_is_one_line_exit_2_before_any_run(run_cli, tmp_path, counting, case):
    replace, append, flags, expected = BAD[case]
    result = run_cli("train", str(_toml(tmp_path, replace, append)), "--out", str(tmp_path / "run"), *flags)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr
    assert counting.runs == 0 and counting.made == 0  # nothing measured, no board even opened
    assert not (tmp_path / "run").exists()  # and no half-made run folder


def test_demo_data_on_a_task_that_reads_none_is_refused_before_any_run(run_cli, counting):
    result = run_cli("demo", "--data", "nope.csv")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "digits task" in lines[0], result.stderr
    assert counting.runs == 0 and counting.made == 0


def test_the_counter_counts_a_good_run(run_cli, tmp_path, counting):
    """The proof above can fail: the same path with good values does measure."""
    result = run_cli("collect", str(_toml(tmp_path)), "--out", str(tmp_path / "c"), "--samples", "20")
    assert result.returncode == 0, result.stderr
    assert counting.made == 1 and counting.runs >= 1


def test_paths_resolve_against_the_toml_file(tmp_path, monkeypatch):
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "v.csv").write_text((ROOT / "host/pnn/datasets/vowels_hillenbrand_subset.csv").read_text())
    toml = folder / "x.toml"
    toml.write_text('[task]\nname = "vowels"\ndata = "v.csv"\n[system]\nkind = "optical"\nn_in = 24\nn_out = 12\n'
                    '[train]\nencoder = "concat"\n')
    monkeypatch.chdir(tmp_path)  # not the TOML's folder
    assert config.load(toml).task.data == str(folder / "v.csv")
    flagged = config.load(toml, {"task.data": config.Flag("--data", "experiments/v.csv")})
    assert flagged.task.data == str(folder / "v.csv")  # a flag's path is relative to where the user is


def test_vowels_need_no_path_the_subset_ships_with_pnn():
    from pnn.data import load_task

    cfg = config.parse({"task": {"name": "vowels"}, "system": {"kind": "optical", "n_in": 24, "n_out": 12},
                        "train": {"encoder": "concat"}})  # fmt: skip
    assert Path(cfg.task.data).is_file() and "datasets" in cfg.task.data
    task = load_task("vowels")
    assert (len(task.y_train), len(task.y_test), task.n_classes) == (210, 49, 7)
    assert (Path(cfg.task.data).parent / "README.md").read_text().count("CC-BY-4.0") >= 1


def test_trainers_are_read_from_nets_at_run_time(monkeypatch):
    from pnn import nets

    with pytest.raises(config.ConfigError, match="'newcomer' is not one"):
        config.parse({"train": {"trainers": ["newcomer"]}})
    monkeypatch.setattr(nets, "TRAINERS", (*nets.TRAINERS, "newcomer"))
    assert config.parse({"train": {"trainers": ["newcomer"]}}).train.trainers == ["newcomer"]


def test_twin_kind_shg_is_a_choice_and_a_bad_kind_names_the_choices():
    assert config.parse({"twin": {"kind": "shg"}}).as_dict()["twin"]["kind"] == "shg"
    with pytest.raises(config.ConfigError) as bad:
        config.parse({"twin": {"kind": "sgh"}})
    assert str(bad.value).startswith("[twin] kind = 'sgh': must be one of mlp, temporal, shg")


def test_twin_drives_says_where_the_twin_data_is_measured():
    assert config.parse({}).twin.drives == "uniform"  # the paper's recipe, unless a file asks otherwise
    for where in ("uniform", "training", "mixed"):
        assert config.parse({"twin": {"drives": where}}).as_dict()["twin"]["drives"] == where
    with pytest.raises(config.ConfigError) as bad:
        config.parse({"twin": {"drives": 3}})
    assert str(bad.value) == "[twin] drives = 3: must be one of uniform, training, mixed"


def test_patience_is_checked_and_kept():
    assert config.parse({}).system.patience == 600
    assert config.parse({"system": {"patience": 30}}).system.patience == 30
    with pytest.raises(config.ConfigError, match=r"\[system\] patience = 'long'"):
        config.parse({"system": {"patience": "long"}})


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_parses_and_validates_from_anywhere(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config.load(example)
    assert cfg.experiment.name and cfg.train.trainers
    if cfg.task.data:
        assert Path(cfg.task.data).exists()


def test_patience_reaches_connect_all_when_it_takes_it(monkeypatch):
    from pnn import devices, experiment

    seen: list[dict] = []

    def with_patience(urls, *, store=None, patience=None):
        seen.append({"patience": patience})
        return "pool"

    def without(urls, *, store=None):
        seen.append({})
        return "pool"

    spec = config.parse({"system": {"url": "sim://electronic", "patience": 30}}).as_dict()["system"]
    monkeypatch.setattr(devices, "connect_all", with_patience)
    assert experiment.make_system(spec) == "pool" and seen[-1] == {"patience": 30.0}
    monkeypatch.setattr(devices, "connect_all", without)  # a pnn whose connect_all has no patience yet
    assert experiment.make_system(spec) == "pool" and seen[-1] == {}


def test_a_firmware_board_that_counts_runs_sees_none_before_the_error(run_cli, tmp_path):
    """The real firmware under MicroPython (tests/fw_counting.py) behind a pty: bad values never reach it."""
    import os
    import subprocess
    import time
    import tty

    from pnn.testing.faults import Faults, FaultyCable
    from pnn_protocol import frame, messages
    from pnn_protocol.codec import packb

    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    log = tmp_path / "fw.txt"
    with open(log, "wb") as f:
        proc = subprocess.Popen(["micropython", "-X", "heapsize=256k", str(ROOT / "tests" / "fw_counting.py"),
                                 os.ttyname(slave)], stdout=f, stderr=f)  # fmt: skip
    os.close(slave)
    try:
        deadline = time.monotonic() + 60
        while "serving" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        cable = FaultyCable(master, Faults(), tmp_path)
        try:
            url = f"serial://{cable.path}?n_in=64&n_out=16"
            for replace, flags in ((("epochs = 2", "epochs = 2\nlr = -1"), []), (("", ""), ["--epochs", "-3"]),
                                   (("", ""), ["--trainers", "pat,magic"])):  # fmt: skip
                toml = _toml(tmp_path, replace if replace[0] else ('kind = "electronic"', f'url = "{url}"'))
                toml.write_text(toml.read_text().replace('kind = "electronic"', f'url = "{url}"'))
                result = run_cli("train", str(toml), "--out", str(tmp_path / "run"), *flags)
                assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        finally:
            cable.close()
        os.write(master, b"\x00" + frame(packb(messages.repl(1))))  # the counts, please
        proc.wait(30)
        counts = log.read_text(errors="replace").split("counts ")[-1]
        assert '"runs": 0' in counts and '"requests": 1' in counts, counts  # only our REPL request arrived
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
