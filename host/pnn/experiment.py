"""An experiment end to end: system -> twin data -> twin fit -> trainers -> table, run folder and plots.

`pnn demo`, `pnn train EXPERIMENT.toml` and bench/pat.py all run through `run`. An experiment is a
small nested dict (the TOML file's shape); `resolve` fills defaults and rejects unknown keys with
a message that says which keys exist; the checks live in config.py.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from . import config, provenance, twin_data
from .data import Task, load_task
from .link.errors import UserError
from .report import regenerate, summary_table
from .store import DataStore
from .system import PhysicalSystem
from .train import TrainConfig, accuracy, build, train
from .twin import Twin, collect, describe, fit_per_source, load_twins, save_twins

CHUNK = 256  # drives per measurement call and per durable store chunk: a crash loses at most this many
ARCH_KEYS = {"mlp": ("hidden",), "temporal": ("channels", "kernel"), "shg": ()}  # shg: the physics alone


class ExperimentError(UserError, ValueError):
    """An experiment that cannot run; the message says how to mend it."""


def resolve(raw: dict[str, Any], overrides: dict[str, config.Flag] | None = None) -> dict[str, Any]:
    """Defaults filled in and every value checked (config.parse); a bad one is a one-line ConfigError."""
    return config.parse(raw, overrides).as_dict()


def load(path: str | Path, overrides: dict[str, config.Flag] | None = None) -> dict[str, Any]:
    """Read, check and resolve an experiment TOML file; paths in it resolve against its folder."""
    return config.load(path, overrides).as_dict()


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The resolved config a run folder was started with (for resuming it)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ExperimentError(f"'{run_dir}' is not a run folder (no config.json); give the folder pnn train wrote")
    return json.loads(path.read_text())


def new_run_dir(root: str | Path, name: str) -> Path:
    """A run folder under `root` named by the time and `name` that does not exist yet."""
    path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{n}"
    return path


def check_fresh(run_dir: Path) -> None:
    """A new run into a folder that already holds one would mix two runs' rows: refuse (resume it instead)."""
    if not run_dir.exists():
        return
    # config.json and a twin alone are fine: pnn collect / fit-twin prepare a folder for pnn train to use
    held = [n for n in ("metrics.jsonl", "summary.json", "predictions.json") if (run_dir / n).exists()]
    if held:
        raise ExperimentError(f"--out {run_dir}: that folder already holds a run ({', '.join(held)}); give a new "
                              "--out folder, or --resume to continue it")  # fmt: skip


def prepare_dir(cfg: dict[str, Any], run_dir: str | Path) -> Path:
    """The run folder, made if need be, with the resolved config in it (what pnn collect / fit-twin leave)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    return run_dir


@contextlib.contextmanager
def opened_system(spec: dict[str, Any]) -> Iterator[PhysicalSystem]:
    """`make_system(spec)`, closed when the block ends: a board's link closes with the command that used it,
    so a later session on its port gets every reply."""
    system = make_system(spec)
    try:
        yield system
    finally:
        close = getattr(system, "close", None)
        if callable(close):
            close()


def make_system(spec: dict[str, Any]) -> PhysicalSystem:
    """A simulated system by kind, or a device / pool by URL (`url`, or a list of URLs)."""
    if spec.get("url"):
        from .devices import connect_all

        # patience: how long to wait when every board is gone (where this pnn's connect_all takes it)
        takes = "patience" in inspect.signature(connect_all).parameters
        return connect_all(spec["url"], **({"patience": spec.get("patience", config.SystemSection.patience)} if takes else {}))
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


def collect_data(cfg: dict[str, Any], system: PhysicalSystem, run_dir: Path, *, show_progress: bool = True,
                 task: Task | None = None) -> DataStore:
    """Measure the twin's training data into run_dir/twin-data (resumes whatever is already there).

    `[twin] drives` says where (pnn.twin_data): "training" and "mixed" run the task's training
    inputs (`task`, loaded from the config if not given) through networks of [train]'s shape.
    """
    twin_cfg = cfg["twin"]
    where = twin_cfg.get("drives", "uniform")  # run folders from before the key measured uniform drives
    meta = {"system": describe(system), "seed": cfg["system"]["seed"], "chunk": CHUNK, "repeats": twin_cfg["repeats"]}
    if where != "uniform":  # a store of uniform drives keeps the metadata it always had
        meta["drives"] = where
    store = DataStore(run_dir / "twin-data", meta=meta)
    pairs = None
    if where != "uniform":
        task = task or load_task(cfg["task"]["name"], cfg["task"]["data"])
        shape = {k: v for k, v in cfg["train"].items() if k not in ("trainers", "seeds")}
        pairs = twin_data.sampler(where, system, task, TrainConfig(**shape))
    collect(system, twin_cfg["samples"], seed=cfg["system"]["seed"], chunk=CHUNK, repeats=twin_cfg["repeats"],
            store=store, show_progress=show_progress, pairs=pairs)
    return store


def collect_into(cfg: dict[str, Any], run_dir: Path, *, show_progress: bool = True) -> DataStore:
    """`pnn collect`: measure the twin's data on the configured system into run_dir/twin-data, then close it."""
    with opened_system(cfg["system"]) as system:
        return collect_data(cfg, system, run_dir, show_progress=show_progress)


def fit_from_store(cfg: dict[str, Any], run_dir: Path, *, show_progress: bool = True) -> Twin | dict[str, Twin]:
    """Fit the twin on what run_dir/twin-data holds (one per board if a pool measured it); saves them."""
    twin_cfg = cfg["twin"]
    store = DataStore(run_dir / "twin-data")
    drives, responses = (torch.from_numpy(a) for a in store.load())
    if len(drives) < 10:
        raise ExperimentError(f"{run_dir}/twin-data holds {len(drives)} samples; run 'pnn collect' first")
    twins = fit_per_source(drives, responses, store.load_extra("source"), seed=cfg["system"]["seed"],
                           epochs=twin_cfg["epochs"], kind=twin_cfg["kind"], show_progress=show_progress,
                           **{k: twin_cfg[k] for k in ARCH_KEYS.get(twin_cfg["kind"], ())})
    for twin in twins.values():
        twin.metadata.update(system=store.meta.get("system"), seed=cfg["system"]["seed"])
    save_twins(twins, run_dir)
    return twins[""] if list(twins) == [""] else twins


def obtain_twin(cfg: dict[str, Any], system: PhysicalSystem, run_dir: Path, *, show_progress: bool = True,
                task: Task | None = None) -> Twin | dict[str, Twin]:
    """The configured twin file, else run_dir's twin(s), else measure (resuming) and fit."""
    if cfg["twin"]["path"]:
        twin = Twin.load(cfg["twin"]["path"])
        twin.save(run_dir / "twin.pt")
        return twin
    existing = load_twins(run_dir)
    if existing is not None:
        return existing
    collect_data(cfg, system, run_dir, show_progress=show_progress, task=task)
    return fit_from_store(cfg, run_dir, show_progress=show_progress)


def evaluate(run_dir: Path, trainer: str = "pat") -> float:
    """Re-measure a trained network's test accuracy on the system (which may have drifted since)."""
    run_dir = Path(run_dir)
    # one checkpoint per seed (trainer.seedN.pt): the network of the last seed trained
    found = sorted((run_dir / "checkpoints").glob(f"{trainer}.seed*.pt"), key=lambda p: int(p.stem.rsplit("seed", 1)[1]))
    if not found:
        raise ExperimentError(f"no checkpoint for trainer '{trainer}' in {run_dir / 'checkpoints'}; train with it first")
    checkpoint_path = found[-1]
    cfg = json.loads((run_dir / "config.json").read_text())
    task = load_task(cfg["task"]["name"], cfg["task"]["data"])
    twin = load_twins(run_dir) if trainer != "digital" else None
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    with opened_system(cfg["system"]) as system:
        net, _, test_bodies = build(trainer, task, system, twin, TrainConfig(**checkpoint["config"]))  # type: ignore[arg-type]
        net.load_state_dict(checkpoint["state_dict"])
        net.use(test_bodies).eval()
        return accuracy(net, task.x_test, task.y_test)[0]


def run(cfg: dict[str, Any], run_dir: str | Path, *, show_progress: bool = True, console: Console | None = None,
        resume: bool = False) -> dict[str, Any]:
    """Run an experiment (every trainer, for each of [train] seeds); returns the summary (run_dir/summary.json).

    Each number the summary, metrics.jsonl, predictions.json and the plots show comes from one
    evaluation: the last epoch's test pass of each trainer and seed. With `resume`, each trainer
    and seed continues from run_dir's checkpoint (a finished one is not re-run) and the twin(s)
    saved there are reused.
    """
    console = console or Console()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seeds = [cfg["train"]["seed"] + i for i in range(cfg["train"].get("seeds", 1))]
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    record: dict[str, Any] = {"versions": provenance.versions(), "seeds": seeds, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_record(run_dir, record)
    task = load_task(cfg["task"]["name"], cfg["task"]["data"])
    with opened_system(cfg["system"]) as system:
        record["boards"] = provenance.boards(system)
        _write_record(run_dir, record)
        started = time.perf_counter()

        twin = obtain_twin(cfg, system, run_dir, show_progress=show_progress, task=task)
        twins = twin if isinstance(twin, dict) else {"": twin}
        twin_seconds = time.perf_counter() - started

        train_keys = {k: v for k, v in cfg["train"].items() if k not in ("trainers", "seeds")}
        results: dict[str, list] = {t: [] for t in cfg["train"]["trainers"]}
        for seed in seeds:
            for trainer in cfg["train"]["trainers"]:
                tc = TrainConfig(**{**train_keys, "seed": seed})
                results[trainer].append(train(trainer, task, system, twin, tc, run_dir=run_dir,
                                             show_progress=show_progress, resume=resume))
        (run_dir / "predictions.json").write_text(json.dumps({
            "classes": task.classes, "truth": task.y_test.tolist(), "seeds": seeds,
            "predicted": {t: [r.predictions.tolist() for r in rs] for t, rs in results.items()}}))  # fmt: skip
        summary = {
            "name": cfg["experiment"]["name"],
            "task": task.name,
            "n_test": len(task.y_test),
            "n_classes": task.n_classes,
            "system": cfg["system"]["url"] or cfg["system"]["kind"],
            "depth": cfg["train"]["depth"],
            "seeds": seeds,
            "twin_nrmse": max(t.nrmse for t in twins.values()),  # the worst board's, where a pool has several
            "twin_nrmse_per_board": {s: t.nrmse for s, t in twins.items()},
            "twin_seconds": twin_seconds,
            "accuracy": {t: _mean([r.test_accuracy for r in rs]) for t, rs in results.items()},
            "accuracy_std": {t: _std([r.test_accuracy for r in rs]) for t, rs in results.items()},
            "accuracy_per_seed": {t: [r.test_accuracy for r in rs] for t, rs in results.items()},
            "seconds": {t: sum(r.seconds for r in rs) for t, rs in results.items()},
            "total_seconds": time.perf_counter() - started,
            "run_dir": str(run_dir),
        }
        if hasattr(system, "stats"):  # boards: per-device throughput, retries and errors for the report
            stats = system.stats()
            per_device = stats if all(isinstance(v, dict) for v in stats.values()) else {cfg["system"]["url"]: stats}
            (run_dir / "devices.json").write_text(json.dumps(per_device, indent=1, default=str))
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))  # written last: the run is complete
    regenerate(run_dir)
    console.print(summary_table([summary]))
    return summary


def _write_record(run_dir: Path, record: dict[str, Any]) -> None:
    (run_dir / "run.json").write_text(json.dumps(record, indent=1, default=str))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _std(values: list[float]) -> float:
    """Sample standard deviation (0 for one value)."""
    if len(values) < 2:
        return 0.0
    m = _mean(values)
    return (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5
