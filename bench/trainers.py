"""Accuracy against physical queries, for every trainer, on two simulated systems and tasks.

    nice -n 15 python bench/trainers.py [--quick] [--seeds 0 1 2] [--only electronic-fashion,optical-vowels]

Rows: every trainer of `pnn.nets.TRAINERS` on (a) the electronic system (RLC + transistor, realistic
noise and drift) with Fashion-MNIST 14x14 and (b) the optical (SHG) system with the Hillenbrand
vowels. One board and one twin per task (fitted once, on uniform random drives); the training
seeds vary the network's start and the batch order. Queries are samples driven through the system,
counted by one `Counting` wrapper: the twin's data (for trainers that use a twin), each trainer's
own set-up (model-free: a response-statistics probe) and training; evaluation queries are not
counted (forward-forward's are n_classes times the others': it tries every label). The table gives
mean +- std over seeds of the final test accuracy, the queries spent, and the queries each trainer
needed to reach the target accuracy (mean over seeds; "-" if a seed never got there); the line
under it names the physical trainer that got there with the fewest. digital and linear are
references (digital nets, no physical query): drawn as lines, never "the fewest".

Fashion-MNIST is a fixed subset (600 train / 400 test by default, drawn once with seed 0 from the
60,000 / 10,000 idx files; the same rows for every trainer and seed); vowels is the shipped csv's
own split. The electronic simulation integrates 196 drive samples per example (~0.4 s a call plus
~1.5 ms an example on one core), which sets the budget: the 12 trainers x 3 seeds x 2 setups fit
in 25 minutes on a loaded, shared 2-core machine with 3 worker processes. Writes
bench/results/trainers.json and trainers.png;
`--replot JSON --target 0.72 0.91` redraws them with other targets without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from pnn import physics
from pnn.counting import counting
from pnn.data import Task, load_task
from pnn.nets import TRAINERS
from pnn.train import TrainConfig, train
from pnn.trainers import TWIN_FREE
from pnn.twin import fit_twin

ROOT = Path(__file__).resolve().parents[1]
VOWELS = ROOT.parent / "shared" / "data" / "vowels_hillenbrand_subset.csv"


def subset(task: Task, n_train: int, n_test: int) -> Task:
    """A fixed random subset (seed 0): the same rows for every trainer and seed."""
    g = torch.Generator().manual_seed(0)
    tr = torch.randperm(len(task.x_train), generator=g)[:n_train]
    te = torch.randperm(len(task.x_test), generator=g)[:n_test]
    return Task(task.name, task.x_train[tr], task.y_train[tr], task.x_test[te], task.y_test[te], task.classes)


def setups(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    quick = args.quick
    return {
        "electronic-fashion": {
            "task": lambda: subset(load_task("fashion-mnist"), 120 if quick else args.fashion_train,
                                   100 if quick else args.fashion_test),
            "split": "a fixed seed-0 draw from the 60,000 / 10,000 idx files",
            "system": lambda: physics.Electronic(196, 49, seed=1, substeps=1),
            "twin": {"n": 300 if quick else 2000, "epochs": 5 if quick else 60, "hidden": (256, 256)},
            "cfg": {"depth": 1, "epochs": 1 if quick else args.fashion_epochs, "batch_size": 50, "lr": 0.02},
        },
        "optical-vowels": {
            "task": lambda: load_task("vowels", args.vowels),
            "split": "the shipped csv's own train / test split",
            "system": lambda: physics.Optical(24, 12, seed=1),
            "twin": {"n": 300 if quick else 2000, "epochs": 5 if quick else 60, "hidden": (256, 256)},
            "cfg": {"depth": 1, "epochs": 2 if quick else 20, "batch_size": 16, "lr": 0.02, "encoder": "concat"},
        },
    }


def prepare(name: str, setup: dict[str, Any], console: Console) -> dict[str, Any]:
    """The setup's task, board and twin (fitted once, on counted uniform random drives)."""
    task, system = setup["task"](), counting(setup["system"](), "twin")
    started = time.perf_counter()
    twin = fit_twin(system, setup["twin"]["n"], epochs=setup["twin"]["epochs"], hidden=setup["twin"]["hidden"],
                    show_progress=False)
    twin.metadata["queries"] = system.rows["twin"]
    console.print(f"{name}: split {len(task.x_train)} train / {len(task.x_test)} test ({setup['split']}), twin NRMSE {twin.nrmse:.3f} "
                  f"on {system.rows['twin']} queries ({time.perf_counter() - started:.0f} s)")
    return {"task": task, "system": system.inner, "twin": twin, "cfg": setup["cfg"], "split": setup["split"]}


REFERENCE = ("digital", "linear", "linear-unclipped")  # digital nets: no physical query, a reference and never "the fewest"
OPTIONS = {"cma-es": {"popsize": 4}}  # the smallest useful population: per step, 4 passes where SPSA takes 2
_PREPARED: dict[str, dict[str, Any]] = {}  # filled before the worker processes fork


def run_seed(name: str, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Every trainer on one setup with one training seed (in a worker process)."""
    torch.set_num_threads(1)
    p, console, runs = _PREPARED[name], Console(width=140), {}
    for trainer in TRAINERS:
        t0 = time.perf_counter()
        cfg = TrainConfig(**p["cfg"], seed=seed)
        result = train(trainer, p["task"], p["system"], None if trainer in TWIN_FREE else p["twin"], cfg,
                       show_progress=False, **OPTIONS.get(trainer, {}))
        runs[trainer] = [{"seed": seed, "final": result.test_accuracy, "seconds": time.perf_counter() - t0,
                          "curve": [(r["queries"], r["test_accuracy"]) for r in result.history]}]
        console.print(f"  {name} {trainer:14s} seed {seed}: {100 * result.test_accuracy:5.1f}% "
                      f"after {result.history[-1]['queries']} queries ({time.perf_counter() - t0:.0f} s)")
    return runs


def run_all(names: list[str], seeds: list[int], jobs: int) -> dict[str, dict[str, Any]]:
    """(setup, seed) jobs over `jobs` forked worker processes; rows gathered per setup and trainer."""
    import multiprocessing

    work = [(n, s) for n in names for s in seeds]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        done = pool.starmap(run_seed, work)
    results: dict[str, dict[str, Any]] = {}
    for (name, _), runs in zip(work, done, strict=True):
        p = _PREPARED[name]
        r = results.setdefault(name, {"task": p["task"].name, "n_train": len(p["task"].x_train),
                                      "n_test": len(p["task"].x_test), "twin_nrmse": p["twin"].nrmse,
                                      "twin_queries": p["twin"].metadata["queries"], "config": p["cfg"],
                                      "split": p["split"], "runs": {}})
        for trainer, rows in runs.items():
            r["runs"].setdefault(trainer, []).extend(rows)
    return results


def queries_to(curve: list[tuple[int, float]], target: float) -> float:
    """Queries at the first epoch whose test accuracy reaches `target` (inf: never)."""
    return next((float(q) for q, acc in curve if acc >= target), math.inf)


def summarise(result: dict[str, Any], target: float | None) -> tuple[Table, str, float]:
    runs = result["runs"]
    finals = {t: np.array([r["final"] for r in rs]) for t, rs in runs.items()}
    physical = {t: f for t, f in finals.items() if t not in REFERENCE}
    if target is None:  # 95% of the best physical trainer's mean, to a whole point
        target = math.floor(95 * max(f.mean() for f in physical.values())) / 100
    table = Table(title=f"{result['task']}: test accuracy against physical queries (target {100 * target:.0f}%)")
    for column in ("trainer", "accuracy", "queries", f"queries to {100 * target:.0f}%", "s/run"):
        table.add_column(column, justify="left" if column == "trainer" else "right")
    reach = {}
    for trainer, rs in runs.items():
        needed = [queries_to(r["curve"], target) for r in rs]
        reach[trainer] = float(np.mean(needed))
        spent = np.mean([r["curve"][-1][0] for r in rs])
        table.add_row(trainer, f"{100 * finals[trainer].mean():.1f} +- {100 * finals[trainer].std():.1f}%",
                      f"{spent:,.0f}", "-" if math.isinf(reach[trainer]) else f"{reach[trainer]:,.0f}",
                      f"{np.mean([r['seconds'] for r in rs]):.0f}")
    reached = {t: q for t, q in reach.items() if t not in REFERENCE and not math.isinf(q)}
    best = (f"fewest physical queries to {100 * target:.0f}%: {min(reached, key=reached.get)} "
            f"({min(reached.values()):,.0f})" if reached else f"no physical trainer reached {100 * target:.0f}%")
    return table, best, target


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        physical = [t for t in result["runs"] if t not in REFERENCE]
        palette = plt.cm.tab10.colors if len(physical) <= 10 else plt.cm.tab20.colors  # one colour per trainer
        for trainer, rs in result["runs"].items():
            if trainer in REFERENCE:  # no physical queries: a black reference line (no trainer is black)
                ax.axhline(100 * np.mean([r["final"] for r in rs]), color="black", ls="--" if trainer == "digital" else "-.",
                           label=f"{trainer} (digital net, 0 queries)")
                continue
            color = palette[physical.index(trainer) % len(palette)]
            q = np.mean([[c[0] for c in r["curve"]] for r in rs], axis=0)
            acc = 100 * np.array([[c[1] for c in r["curve"]] for r in rs])
            if np.ptp(q) == 0:  # in-silico: training spends no queries beyond the twin's data
                ax.errorbar(q[-1:], acc[:, -1].mean(keepdims=True), acc[:, -1].std(keepdims=True), fmt="s",
                            color=color, capsize=3, label=f"{trainer} (final)")
                continue
            ax.plot(q, acc.mean(0), marker="o" if len(q) < 3 else None, ms=4, color=color, label=trainer)
            ax.fill_between(q, acc.mean(0) - acc.std(0), acc.mean(0) + acc.std(0), color=color, alpha=0.15)
        ax.axhline(100 * result["target"], color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("physical queries (samples through the system, twin data included)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{name}: {result['n_train']} train / {result['n_test']} test, mean +- std over seeds")
        ax.legend(fontsize=7, loc="lower right", framealpha=0.6)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the script, not the science")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", default="electronic-fashion,optical-vowels")
    parser.add_argument("--vowels", type=Path, default=VOWELS)
    parser.add_argument("--fashion-train", type=int, default=600)
    parser.add_argument("--fashion-test", type=int, default=400)
    parser.add_argument("--fashion-epochs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3, help="worker processes (one (setup, seed) pair each)")
    parser.add_argument("--target", type=float, nargs="*", help="target accuracy per setup (default: 95%% of the best)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--replot", type=Path, help="no runs: print the tables and redraw the plot from this JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small tensors on a shared machine: one thread is fastest
    console = Console(width=140)
    started = time.perf_counter()
    names = [n for n in setups(args) if n in args.only.split(",")]
    if args.replot:  # tables and plot again from a finished run's JSON
        saved = json.loads(args.replot.read_text())
        results, args.seeds, lines = saved["results"], saved["seeds"], []
        names, started = list(results), time.perf_counter() - saved["wall_s"]
    else:
        for name in names:
            _PREPARED[name] = prepare(name, setups(args)[name], console)
        results, lines = run_all(names, args.seeds, args.jobs), []
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "trainers.json").write_text(json.dumps({"partial": True, "results": results}))  # before anything can fail
    for i, name in enumerate(names):
        table, best, results[name]["target"] = summarise(results[name], args.target[i] if args.target else None)
        r = results[name]
        lines.append((table, best, f"split: {r['n_train']} train / {r['n_test']} test ({r.get('split', '?')}), "
                                   f"the same rows for every trainer and seed"))
    for table, best, split in lines:
        console.print(table)
        console.print(best)
        console.print(split)
    wall = time.perf_counter() - started
    console.print(f"wall time {wall:.0f} s ({len(args.seeds)} seeds)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trainers.json").write_text(json.dumps({"quick": args.quick, "seeds": args.seeds, "wall_s": wall,
                                                         "results": results}, indent=1))
    plot(results, args.out / "trainers.png")
    console.print(f"wrote {args.out / 'trainers.json'} and {args.out / 'trainers.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
