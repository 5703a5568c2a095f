"""A run folder's table and plots, rebuilt from what it recorded; never re-measures the hardware.

Every number shown comes from the run's own records: summary.json (the table), metrics.jsonl (the
curves), predictions.json (the confusion matrix), all from the same last evaluation of each trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from .link.errors import UserError

NEEDED = {
    "config.json": "the resolved configuration (not a run folder made by pnn demo / pnn train)",
    "run.json": "the run record (versions, boards, seeds)",
    "metrics.jsonl": "no epoch finished",
    "twin.pt": "no twin was fitted",
    "predictions.json": "training did not finish",
    "summary.json": "the run stopped before its end",
}


class ReportError(UserError, ValueError):
    """The folder is not a run folder, or lacks what a plot needs."""


def missing(run_dir: Path) -> list[str]:
    """What a complete run folder has and this one lacks, each with what its absence means."""
    twins = (run_dir / "twin.pt").exists() or any(run_dir.glob("twin-*.pt"))
    return [f"{name} ({why})" for name, why in NEEDED.items()
            if not (twins if name == "twin.pt" else (run_dir / name).exists())]  # fmt: skip


def regenerate(run_dir: Path, *, complete: bool = False) -> list[Path]:
    """Write training.png, twin.png, confusion.png and devices.png where their records exist.

    Args:
        complete: raise ReportError naming what is missing when the run is incomplete (after writing
            the plots its records allow), as `pnn report` does.
    """
    from . import plots

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ReportError(f"'{run_dir}' is not a run folder (no config.json); pass a folder made by pnn demo or pnn train")
    name = json.loads((run_dir / "config.json").read_text())["experiment"]["name"]
    summary = _read(run_dir / "summary.json") or {}
    written = []
    rows = plots.read_metrics(run_dir)
    if rows:
        written.append(plots.training_curves(rows, run_dir / "training.png", name, summary.get("n_classes"),
                                             summary.get("n_test")))  # fmt: skip
    twin_plot = _twin_plot(run_dir, name)
    if twin_plot is not None:
        written.append(twin_plot)
    p = _read(run_dir / "predictions.json")
    if p and p["predicted"]:
        trainer = "pat" if "pat" in p["predicted"] else next(iter(p["predicted"]))
        passes = p["predicted"][trainer]
        passes = passes if passes and isinstance(passes[0], list) else [passes]  # one pass per seed
        truth, pred = np.tile(np.array(p["truth"]), len(passes)), np.concatenate([np.array(x) for x in passes])
        acc = 100 * float((truth == pred).mean())
        pooled = f", {len(passes)} seeds pooled" if len(passes) > 1 else ""
        written.append(plots.confusion_matrix(truth, pred, p["classes"], run_dir / "confusion.png",
                                              f"{name}: {plots.label(trainer)}\n{acc:.1f}% correct{pooled}"))
    if (run_dir / "devices.json").exists():
        written.append(plots.device_throughput(json.loads((run_dir / "devices.json").read_text()), run_dir / "devices.png"))
    gaps = missing(run_dir)
    if complete and gaps:
        wrote = f"; wrote {', '.join(p.name for p in written)}" if written else "; wrote nothing"
        raise ReportError(f"'{run_dir}' is an incomplete run: missing " + ", ".join(gaps) + wrote)
    return written


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _twin_plot(run_dir: Path, name: str) -> Path | None:
    """The (first) twin against the measurements held out of its fit."""
    import torch

    from . import plots
    from .store import DataStore
    from .twin import load_twins

    twins = load_twins(run_dir)
    if twins is None or not (run_dir / "twin-data").exists():
        return None
    store = DataStore(run_dir / "twin-data")
    drives, measured = store.load()
    board = ""
    if isinstance(twins, dict):  # a pool: show the first board's twin on that board's rows
        board, twin = next(iter(twins.items()))
        rows = store.load_extra("source") == board
        drives, measured = drives[rows], measured[rows]
        board = f"board {board}, 1 of {len(twins)}"
    else:
        twin = twins
    # The last rows were held out of the fit, so this shows the twin on data it never saw.
    drive = torch.from_numpy(drives[-4:])
    with torch.no_grad():
        pairs = np.stack([measured[-4:], twin(drive).numpy()])
    system = json.loads((run_dir / "config.json").read_text())["system"]
    kind = "" if system.get("url") else system.get("kind", "")
    return plots.twin_vs_measurement(pairs, run_dir / "twin.png", twin.nrmse, name, board, kind)


def _cell(s: dict[str, Any], key: str) -> str:
    mean = s["accuracy"].get(key)
    if mean is None:
        return "-"
    std = s.get("accuracy_std", {}).get(key)
    return f"{100 * mean:.1f}%" if not std and len(s.get("seeds", [0])) < 2 else f"{100 * mean:.1f} ± {100 * std:.1f}%"


def _gap(s: dict[str, Any], a: str, b: str) -> str:
    """Mean and std over seeds of the paired difference a - b (percentage points)."""
    per = s.get("accuracy_per_seed", {})
    if a not in s["accuracy"] or b not in s["accuracy"]:
        return "-"
    if a in per and b in per and len(per[a]) > 1:
        d = np.array(per[a]) - np.array(per[b])
        return f"{100 * d.mean():+.1f} ± {100 * d.std(ddof=1):.1f}"
    return f"{100 * (s['accuracy'][a] - s['accuracy'][b]):+.1f}"


ORDER = ("digital", "linear", "linear-unclipped", "in-silico", "pat")


def summary_table(summaries: list[dict[str, Any]], title: str = "") -> Table:
    """One row per run: twin NRMSE, each trainer's test accuracy (mean ± std over seeds), PAT's margins."""
    trainers = sorted({t for s in summaries for t in s["accuracy"]}, key=lambda t: (t not in ORDER, ORDER.index(t) if t in ORDER else 0, t))
    gaps = [(a, b) for a, b in (("pat", "in-silico"), ("pat", "linear")) if any({a, b} <= set(s["accuracy"]) for s in summaries)]
    seeds = sorted({len(s.get("seeds", [0])) for s in summaries})
    over = f"mean ± std over {seeds[0]} seeds" if seeds == [seeds[0]] and seeds[0] > 1 else "1 seed" if seeds == [1] else "mean ± std over seeds"
    table = Table(title=title or f"test accuracy on the system (digital, linear: on their digital nets), {over}")
    names = {"pat": "PAT", ("pat", "in-silico"): "PAT−silico", ("pat", "linear"): "PAT−linear (lift)"}
    columns = ["experiment", "layers", "twin NRMSE", *[names.get(t, t) for t in trainers],
               *[names[g] for g in gaps], "time s"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "experiment" else "right", no_wrap=True)
    for s in summaries:
        boards = len(s.get("twin_nrmse_per_board", {}))
        nrmse = f"{s['twin_nrmse']:.3f}" + (f" (worst of {boards} boards)" if boards > 1 else "")
        table.add_row(s["name"], str(s["depth"]), nrmse, *[_cell(s, t) for t in trainers],
                      *[_gap(s, a, b) for a, b in gaps], f"{s['total_seconds']:.0f}")  # fmt: skip
    return table
