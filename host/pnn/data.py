"""Task datasets, every feature scaled to [0, 1]: digits (offline default), vowels, MNIST, Fashion-MNIST."""

from __future__ import annotations

import csv
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .link.errors import UserError

TASKS = ("digits", "vowels", "mnist", "fashion-mnist")
FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"


class TaskError(UserError, ValueError):
    """A task that cannot be loaded; the message says how to mend it."""


@dataclass
class Task:
    """A classification task split into train and test tensors (features float32 in [0, 1])."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _task(name: str, x_tr, y_tr, x_te, y_te, classes: list[str]) -> Task:
    f = lambda a: torch.tensor(np.array(a), dtype=torch.float32)  # noqa: E731
    i = lambda a: torch.tensor(np.array(a), dtype=torch.long)  # noqa: E731
    return Task(name, f(x_tr), i(y_tr), f(x_te), i(y_te), classes)


def digits(seed: int = 0, test_fraction: float = 0.2) -> Task:
    """scikit-learn's 8x8 digits (1,797 images, shipped inside the wheel): 64 features, 10 classes."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.data / 16.0, d.target, test_size=test_fraction, random_state=seed, stratify=d.target
    )
    return _task("digits", x_tr, y_tr, x_te, y_te, [str(c) for c in range(10)])


def _require(path: str | os.PathLike[str] | None, task: str, hint: str) -> Path:
    if path is None:
        raise TaskError(f"task '{task}' needs a data path: {hint}")
    p = Path(path).expanduser()
    if not p.exists():
        raise TaskError(f"task '{task}': no such file or folder '{p}'; {hint}")
    return p


def vowels(path: str | os.PathLike[str] | None = None) -> Task:
    """Hillenbrand vowels from a CSV with columns f0..f11,label,vowel,split (train/test).

    No path: the 259-sample subset shipped with pnn (pnn/datasets/README.md: source, licence, citation).
    """
    from .datasets import VOWELS

    hint = "give a CSV with columns f0..f11,label,vowel,split ([task] data, or --data)"
    p = _require(VOWELS if path is None else path, "vowels", hint)
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    features = sorted((k for k in (rows[0] if rows else {}) if k[:1] == "f" and k[1:].isdigit()), key=lambda k: int(k[1:]))
    if not rows or not features or not {"label", "split"} <= set(rows[0]):
        raise TaskError(f"task 'vowels': {p} is not a vowel CSV; {hint}")
    try:
        x = np.array([[float(r[k]) for k in features] for r in rows])
        y = np.array([int(r["label"]) for r in rows])
    except ValueError as e:
        raise TaskError(f"task 'vowels': {p} has a non-numeric value ({e}); {hint}") from e
    names = {int(r["label"]): r.get("vowel", r["label"]) for r in rows}
    train = np.array([r["split"] == "train" for r in rows])
    lo, hi = x[train].min(0), x[train].max(0)
    x = np.clip((x - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
    classes = [names[c] for c in sorted(names)]
    return _task("vowels", x[train], y[train], x[~train], y[~train], classes)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise TaskError(f"{path} is not an idx file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise TaskError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {body.size}")
    return body.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise TaskError(f"no {stem}[.gz] in {folder}; point [task] data (or --data) at the folder holding the four idx files")


def mnist_like(path: str | os.PathLike[str] | None, name: str = "mnist", size: int = 14) -> Task:
    """MNIST or Fashion-MNIST from a folder of idx files, downsampled to size x size (default 14x14 = 196)."""
    default = FASHION_MNIST_DEBIAN if name == "fashion-mnist" else None
    hint = "point [task] data (or --data) at a folder with train-images-idx3-ubyte[.gz] and the other three idx files"
    if name == "fashion-mnist" and path is None:
        hint += " (on Debian: apt-get install dataset-fashion-mnist)"
    folder = _require(path or (default if default and Path(default).exists() else None), name, hint)
    parts = [_read_idx(_find_idx(folder, f"{s}-{k}")) for s in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    x_tr, y_tr, x_te, y_te = parts

    def shrink(images: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        return torch.nn.functional.adaptive_avg_pool2d(t, size).flatten(1).numpy()

    classes = [str(i) for i in range(10)]
    if name == "fashion-mnist":
        classes = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
    return _task(name, shrink(x_tr), y_tr, shrink(x_te), y_te, classes)


def load_task(name: str, path: str | os.PathLike[str] | None = None, seed: int = 0) -> Task:
    """Load a task by name: digits (no path), vowels (CSV path; none: the shipped subset), mnist / fashion-mnist (idx folder)."""
    if name == "digits":
        return digits(seed)
    if name == "vowels":
        return vowels(path)
    if name in ("mnist", "fashion-mnist"):
        return mnist_like(path, name)
    raise TaskError(f"unknown task '{name}'; choose one of {', '.join(TASKS)}")
