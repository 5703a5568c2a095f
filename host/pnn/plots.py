"""Run plots (matplotlib PNG): training curves, twin vs measurement, confusion matrix, device throughput.

Every curve says where it was measured: on the system, on the twin, or on a digital network.
"""

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

COLOURS = {"digital": "#888888", "linear": "#9467bd", "in-silico": "#d62728", "pat": "#1f77b4"}
NAMES = {"pat": "PAT", "in-silico": "in-silico", "digital": "digital", "linear": "linear"}
# Where each trainer's test numbers are measured: its own digital network, or the physical system.
DIGITAL = {"digital": "digital net", "linear": "digital net, physics replaced by identity",
           "linear-unclipped": "digital net, physics and DAC clip removed (affine)"}


def where(trainer: str) -> str:
    """'digital net' or 'on the system': what a trainer's test curve was measured on."""
    return DIGITAL.get(trainer, "on the system")


def label(trainer: str) -> str:
    trained = " (trained on the twin)" if trainer == "in-silico" else ""
    return f"{NAMES.get(trainer, trainer)}{trained}: {where(trainer)}"


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _per_epoch(rows: Sequence[dict], key: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """trainer -> (epochs, mean over seeds, std over seeds) of `key`; epochs every seed reached."""
    values: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if "trainer" in row and "epoch" in row and key in row:
            values[row["trainer"]][row["epoch"]].append(row[key])
    out = {}
    for trainer, by_epoch in values.items():
        n = max(len(v) for v in by_epoch.values())
        epochs = sorted(e for e, v in by_epoch.items() if len(v) == n)
        data = [np.array(by_epoch[e], float) for e in epochs]
        out[trainer] = (np.array(epochs), np.array([d.mean() for d in data]),
                        np.array([d.std(ddof=1) if len(d) > 1 else 0.0 for d in data]))  # fmt: skip
    return out


def training_curves(rows: Sequence[dict], path: Path, title: str = "", n_classes: int | None = None,
                    n_test: int | None = None) -> Path:
    """Test accuracy and test loss per epoch, per trainer: mean over seeds, shaded +- 1 std.

    Both panels show the same evaluation (the test set, after each epoch), each curve measured where
    its legend says; the dashed line is chance (1 / classes, and its cross-entropy ln(classes)).
    """
    acc, loss = _per_epoch(rows, "test_accuracy"), _per_epoch(rows, "test_loss")
    seeds = {r.get("seed") for r in rows if "trainer" in r}
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.6))
    for trainer, (epochs, mean, std) in acc.items():
        colour = COLOURS.get(trainer)
        ax_acc.plot(epochs, 100 * mean, "o-", ms=3, color=colour, label=label(trainer))
        ax_acc.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), color=colour, alpha=0.2, lw=0)
        if trainer in loss:
            e, m, sd = loss[trainer]
            ax_loss.plot(e, m, "o-", ms=3, color=colour)
            ax_loss.fill_between(e, m - sd, m + sd, color=colour, alpha=0.2, lw=0)
    if n_classes:
        ax_acc.axhline(100 / n_classes, color="k", ls="--", lw=1, label=f"chance (1/{n_classes})")
        ax_loss.axhline(np.log(n_classes), color="k", ls="--", lw=1)
        ax_loss.annotate(f"chance: ln {n_classes} = {np.log(n_classes):.2f}", (0.01, np.log(n_classes)),
                         xycoords=("axes fraction", "data"), va="bottom", fontsize=8)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100),
               title="test accuracy" + (f" ({n_test} test samples)" if n_test else ""))  # fmt: skip
    top = max([np.log(n_classes) if n_classes else 0.0] + [float((m + sd).max()) for _, m, sd in loss.values()])
    ax_loss.set(xlabel="epoch", ylabel="test cross-entropy (nats)", ylim=(0, 1.15 * top or 1.0),
                title="test loss (same evaluation)")  # fmt: skip
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    n = len(seeds)
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{title}: " + (f"mean ± std over {n} seeds" if n > 1 else "1 seed"))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return _save(fig, path, layout=False)


# What a response's bins and values are, per simulated kind (boards and the other kinds read an ADC).
AXES = {"optical": ("spectrometer bin (second-harmonic frequency, low to high)",
                    "SH intensity (1 = a typical maximum)")}  # fmt: skip
ADC_AXES = ("output bin (consecutive ADC samples averaged; later bins = later in time)",
            "response (fraction of ADC full scale)")  # fmt: skip


def twin_vs_measurement(pairs: np.ndarray, path: Path, nrmse: float, title: str = "", board: str = "",
                        kind: str = "") -> Path:
    """pairs [2, n, n_out]: measured and twin-predicted responses to the same held-out drives."""
    xlabel, ylabel = AXES.get(kind, ADC_AXES)
    measured, predicted = pairs
    n = len(measured)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.6 * n + 1.2), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(measured[i], "k.-", lw=1, label="measured on the system")
        ax.plot(predicted[i], "-", color=COLOURS["pat"], lw=1.5, label="twin's prediction")
        ax.text(0.005, 0.97, f"held-out drive {i + 1}", transform=ax.transAxes, va="top", fontsize=8, alpha=0.7)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(xlabel)
    fig.supylabel(ylabel, fontsize=9)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False)
    who = f" ({board})" if board else ""
    fig.suptitle(f"{title}: twin vs measurement{who} on held-out drives, NRMSE {nrmse:.3f}", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path, layout=False)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """Counts of (true, predicted) pairs; truth and predicted may hold several seeds' passes, pooled."""
    n = len(classes)
    counts = np.zeros((n, n), int)
    np.add.at(counts, (truth, predicted), 1)
    fig, ax = plt.subplots(figsize=(2 + 0.5 * n, 1.5 + 0.5 * n))
    ax.imshow(counts, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes,
           xlabel="predicted class", ylabel="true class")
    ax.set_title(title or "confusion matrix", fontsize=9)
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
    ax_err.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # off the bars
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path, layout: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
