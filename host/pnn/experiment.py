"""An experiment end to end: system -> twin data -> twin fit -> trainers -> table, run folder and plots.

`pnn demo`, `pnn train EXPERIMENT.toml` and bench/pat.py all run through `run`. An experiment is a
small nested dict (the TOML file's shape); `resolve` fills defaults and rejects unknown keys with
a message that says which keys exist.
"""

from __future__ import annotations

import copy
import json
import time
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from .data import load_task
from .link.errors import UserError
from .nets import TRAINERS
from .report import regenerate
from .store import DataStore
from .system import PhysicalSystem
from .train import TrainConfig, accuracy, build, train
from .twin import Twin, collect, describe, fit_per_source, load_twins, save_twins
from .twin_models import ARCHITECTURES

DEFAULTS: dict[str, dict[str, Any]] = {
    "experiment": {"name": "experiment"},
    "task": {"name": "digits", "data": None},
    "system": {"kind": "electronic", "url": None, "n_in": 64, "n_out": 64, "seed": 0, "noise": {}},
    "twin": {"samples": 3000, "epochs": 150, "kind": "mlp", "hidden": [256, 256], "channels": 32, "kernel": 16,
             "repeats": 1, "path": None},
    "train": {"trainers": ["digital", "linear", "in-silico", "pat"], **asdict(TrainConfig())},
}
CHUNK = 256  # drives per measurement call and per durable store chunk: a crash loses at most this many
ARCH_KEYS = {"mlp": ("hidden",), "temporal": ("channels", "kernel")}


class ExperimentError(UserError, ValueError):
    """An experiment file that cannot run; the message says how to mend it."""


def resolve(raw: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in; unknown sections or keys are an ExperimentError."""
    resolved = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in resolved:
            raise ExperimentError(f"unknown section [{section}]; sections are {', '.join(f'[{s}]' for s in DEFAULTS)}")
        if not isinstance(values, dict):
            raise ExperimentError(f"[{section}] must be a table of keys, not {values!r}")
        for key, value in values.items():
            if key not in resolved[section]:
                raise ExperimentError(f"unknown key '{key}' in [{section}]; known keys: {', '.join(resolved[section])}")
            resolved[section][key] = value
    _check_names(resolved)
    return resolved


def _check_names(config: dict[str, Any]) -> None:
    """The names a file chooses from a list (twin kind, trainers), checked before anything runs."""
    kind = config["twin"]["kind"]
    if kind not in ARCHITECTURES:
        raise ExperimentError(f"unknown twin kind {kind!r} in [twin]; choose one of {', '.join(ARCHITECTURES)}")
    trainers = config["train"]["trainers"]
    unknown = [t for t in (trainers if isinstance(trainers, list) else [trainers]) if t not in TRAINERS]
    if unknown or not isinstance(trainers, list):
        raise ExperimentError(f"[train] trainers = {trainers!r}: give a list of {', '.join(TRAINERS)}")


def load(path: str | Path) -> dict[str, Any]:
    """Read and resolve an experiment TOML file."""
    p = Path(path)
    if not p.exists():
        raise ExperimentError(f"no experiment file '{p}'; see examples/*.toml for the format")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"{p} is not valid TOML: {e}") from e
    return resolve(raw)


def make_system(spec: dict[str, Any]) -> PhysicalSystem:
    """A simulated system by kind, or a device / pool by URL (`url`, or a list of URLs)."""
    if spec.get("url"):
        from .devices import connect_all

        return connect_all(spec["url"])
    from . import physics

    kinds = physics.KINDS
    if spec["kind"] not in kinds:
        raise ExperimentError(f"unknown system kind '{spec['kind']}'; choose one of {', '.join(kinds)} or give a url")
    try:
        noise = physics.Noise(**spec["noise"])
    except TypeError as e:
        raise ExperimentError(f"bad [system.noise]: {e}") from e
    except ValueError as e:  # the physics checks every value it is given; here they come from the file
        raise ExperimentError(f"bad [system.noise]: {e}") from e
    try:
        return kinds[spec["kind"]](n_in=spec["n_in"], n_out=spec["n_out"], seed=spec["seed"], noise=noise)
    except ValueError as e:
        raise ExperimentError(f"bad [system]: {e}") from e


def collect_data(config: dict[str, Any], system: PhysicalSystem, run_dir: Path, *, show_progress: bool = True) -> DataStore:
    """Measure the twin's training data into run_dir/twin-data (resumes whatever is already there)."""
    twin_cfg = config["twin"]
    store = DataStore(run_dir / "twin-data", meta={"system": describe(system), "seed": config["system"]["seed"],
                                                   "chunk": CHUNK, "repeats": twin_cfg["repeats"]})
    collect(system, twin_cfg["samples"], seed=config["system"]["seed"], chunk=CHUNK, repeats=twin_cfg["repeats"],
            store=store, show_progress=show_progress)
    return store


def fit_from_store(config: dict[str, Any], run_dir: Path, *, show_progress: bool = True) -> Twin | dict[str, Twin]:
    """Fit the twin on what run_dir/twin-data holds (one per board if a pool measured it); saves them."""
    twin_cfg = config["twin"]
    store = DataStore(run_dir / "twin-data")
    drives, responses = (torch.from_numpy(a) for a in store.load())
    if len(drives) < 10:
        raise ExperimentError(f"{run_dir}/twin-data holds {len(drives)} samples; run 'pnn collect' first")
    twins = fit_per_source(drives, responses, store.load_extra("source"), seed=config["system"]["seed"],
                           epochs=twin_cfg["epochs"], kind=twin_cfg["kind"], show_progress=show_progress,
                           **{k: twin_cfg[k] for k in ARCH_KEYS.get(twin_cfg["kind"], ())})
    for twin in twins.values():
        twin.metadata.update(system=store.meta.get("system"), seed=config["system"]["seed"])
    save_twins(twins, run_dir)
    return twins[""] if list(twins) == [""] else twins


def obtain_twin(config: dict[str, Any], system: PhysicalSystem, run_dir: Path, *, show_progress: bool = True
                ) -> Twin | dict[str, Twin]:
    """The configured twin file, else run_dir's twin(s), else measure (resuming) and fit."""
    if config["twin"]["path"]:
        twin = Twin.load(config["twin"]["path"])
        twin.save(run_dir / "twin.pt")
        return twin
    existing = load_twins(run_dir)
    if existing is not None:
        return existing
    collect_data(config, system, run_dir, show_progress=show_progress)
    return fit_from_store(config, run_dir, show_progress=show_progress)


def evaluate(run_dir: Path, trainer: str = "pat") -> float:
    """Re-measure a trained network's test accuracy on the system (which may have drifted since)."""
    run_dir = Path(run_dir)
    checkpoint_path = run_dir / "checkpoints" / f"{trainer}.pt"
    if not checkpoint_path.exists():
        raise ExperimentError(f"no checkpoint {checkpoint_path}; train with trainer '{trainer}' first")
    config = json.loads((run_dir / "config.json").read_text())
    task = load_task(config["task"]["name"], config["task"]["data"])
    system = make_system(config["system"])
    twin = load_twins(run_dir) if trainer != "digital" else None
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    net, _, test_bodies = build(trainer, task, system, twin, TrainConfig(**checkpoint["config"]))  # type: ignore[arg-type]
    net.load_state_dict(checkpoint["state_dict"])
    net.use(test_bodies).eval()
    return accuracy(net, task.x_test, task.y_test)[0]


def run(config: dict[str, Any], run_dir: str | Path, *, show_progress: bool = True, console: Console | None = None) -> dict[str, Any]:
    """Run an experiment; returns the summary (also written to run_dir/summary.json)."""
    # Layers here are small tensors: extra intra-op threads cost more in hand-offs than they win
    # (10x slower on a busy 2-core machine), so one thread it is.
    torch.set_num_threads(1)
    console = console or Console()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))
    task = load_task(config["task"]["name"], config["task"]["data"])
    system = make_system(config["system"])
    started = time.perf_counter()

    twin = obtain_twin(config, system, run_dir, show_progress=show_progress)
    twin_seconds = time.perf_counter() - started
    name = config["experiment"]["name"]

    cfg = TrainConfig(**{k: v for k, v in config["train"].items() if k != "trainers"})
    results, predictions = {}, {}
    for trainer in config["train"]["trainers"]:
        results[trainer] = train(trainer, task, system, twin, cfg, run_dir=run_dir, show_progress=show_progress)
        _, predicted = accuracy(results[trainer].net, task.x_test, task.y_test)
        predictions[trainer] = predicted.tolist()
    (run_dir / "predictions.json").write_text(
        json.dumps({"classes": task.classes, "truth": task.y_test.tolist(), "predicted": predictions})
    )
    summary = {
        "name": name,
        "task": task.name,
        "system": config["system"]["url"] or config["system"]["kind"],
        "depth": cfg.depth,
        "twin_nrmse": twin.nrmse if isinstance(twin, Twin) else max(t.nrmse for t in twin.values()),
        "twin_seconds": twin_seconds,
        "accuracy": {t: r.test_accuracy for t, r in results.items()},
        "seconds": {t: r.seconds for t, r in results.items()},
        "total_seconds": time.perf_counter() - started,
        "run_dir": str(run_dir),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    if hasattr(system, "stats"):  # boards: per-device throughput, retries and errors for the report
        stats = system.stats()
        per_device = stats if all(isinstance(v, dict) for v in stats.values()) else {config["system"]["url"]: stats}
        (run_dir / "devices.json").write_text(json.dumps(per_device, indent=1, default=str))
    regenerate(run_dir)
    console.print(summary_table([summary]))
    return summary


def summary_table(summaries: list[dict[str, Any]], title: str = "physical network, test accuracy on the system") -> Table:
    table = Table(title=title)
    for column in ("experiment", "layers", "twin NRMSE", "digital", "in-silico", "PAT", "PAT-silico", "time s"):
        table.add_column(column, justify="left" if column == "experiment" else "right", no_wrap=True)

    def pct(s: dict, key: str) -> str:
        value = s["accuracy"].get(key)
        return "-" if value is None else f"{100 * value:.1f}%"

    for s in summaries:
        acc = s["accuracy"]
        gap = f"{100 * (acc['pat'] - acc['in-silico']):+.1f}" if {"pat", "in-silico"} <= set(acc) else "-"
        table.add_row(s["name"], str(s["depth"]), f"{s['twin_nrmse']:.3f}", pct(s, "digital"),
                      pct(s, "in-silico"), pct(s, "pat"), gap, f"{s['total_seconds']:.0f}")
    return table

