"""Run plots (matplotlib PNG): training curves, twin vs measurement, confusion matrix, device throughput."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only: runs on machines with no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLOURS = {"digital": "#888888", "in-silico": "#d62728", "pat": "#1f77b4"}


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def training_curves(rows: Sequence[dict], path: Path, title: str = "") -> Path:
    """Test accuracy (on the physical system) and training loss per epoch, one line per trainer."""
    by_trainer: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if "trainer" in row and "epoch" in row:
            by_trainer[row["trainer"]].append(row)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for trainer, trainer_rows in by_trainer.items():
        epochs = [r["epoch"] for r in trainer_rows]
        colour = COLOURS.get(trainer)
        ax_acc.plot(epochs, [100 * r["test_accuracy"] for r in trainer_rows], "o-", color=colour, label=trainer)
        ax_loss.plot(epochs, [r["loss"] for r in trainer_rows], "o-", color=colour, label=trainer)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy on the system (%)", title="accuracy")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss", yscale="log")
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


def twin_vs_measurement(pairs: np.ndarray, path: Path, nrmse: float, title: str = "") -> Path:
    """pairs [2, n, n_out]: measured and twin-predicted responses to the same fresh drives."""
    measured, predicted = pairs
    n = len(measured)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.8 * n + 0.6), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(measured[i], "k.-", lw=1, label="measured")
        ax.plot(predicted[i], "-", color=COLOURS["pat"], lw=1.5, label="twin")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right")
    axes[-1, 0].set_xlabel("output bin")
    fig.suptitle(f"{title}  twin vs measurement on held-out drives (NRMSE {nrmse:.3f})")
    return _save(fig, path)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    n = len(classes)
    counts = np.zeros((n, n), int)
    np.add.at(counts, (truth, predicted), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * n, 1 + 0.5 * n))
    ax.imshow(counts, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    return _save(fig, path)


def device_throughput(stats: dict[str, dict], path: Path) -> Path:
    """Per-device samples/s and error counts (from a DevicePool's stats)."""
    names = list(stats)
    fig, (ax_rate, ax_err) = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2), sharey=True)
    ax_rate.barh(names, [stats[n].get("samples_per_s", 0) for n in names], color=COLOURS["pat"])
    ax_rate.set(xlabel="samples/s", title="throughput per device")
    kinds = ("errors", "retries", "reconnects")
    left = np.zeros(len(names))
    for kind, colour in zip(kinds, (COLOURS["in-silico"], "#ff7f0e", COLOURS["digital"]), strict=True):
        counts = np.array([stats[n].get(kind, 0) for n in names], float)
        ax_err.barh(names, counts, left=left, color=colour, label=kind)
        left += counts
    ax_err.set(xlabel="count", title="errors / retries / reconnects", xlim=(0, max(1.0, left.max() * 1.1)))
    ax_err.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_err.legend(loc="lower right")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
