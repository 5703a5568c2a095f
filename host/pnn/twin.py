"""Digital twins: collect (drive, response) data from a physical system and fit a differentiable model.

The twin only has to be good enough to point the gradient the right way (PAT evaluates it at the
drive the hardware saw); its held-out NRMSE says how good it is.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import twin_models
from .progress import progress, system_status
from .store import DataStore
from .system import PhysicalSystem, measure


class Twin(nn.Module):
    """A differentiable model of a physical system: drive [B, n_in] in [0, 1] -> response [B, n_out].

    Inputs are centred to [-1, 1] and outputs de-standardised with the statistics of the data it
    was fit on, so the network inside (`kind`: "mlp" or "temporal", see twin_models) works with
    unit-scale numbers.
    """

    def __init__(self, n_in: int, n_out: int, kind: str = "mlp", **arch: Any) -> None:
        super().__init__()
        self.n_in, self.n_out, self.kind, self.arch = n_in, n_out, kind, dict(arch)
        self.net = twin_models.build(kind, n_in, n_out, **arch)
        self.register_buffer("y_mean", torch.zeros(n_out))
        self.register_buffer("y_std", torch.ones(n_out))
        self.nrmse: float = math.nan
        self.nrmse_per_channel: torch.Tensor = torch.full((n_out,), math.nan)
        self.metadata: dict[str, Any] = {}

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return self.net(drive * 2 - 1) * self.y_std + self.y_mean

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights, normalisation, NRMSE and metadata to one file."""
        torch.save(
            {
                "shape": {"n_in": self.n_in, "n_out": self.n_out, "kind": self.kind, "arch": self.arch},
                "state_dict": self.state_dict(),
                "nrmse": self.nrmse,
                "nrmse_per_channel": self.nrmse_per_channel,
                "metadata": self.metadata,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Twin:
        """Read a twin written by `save` (weights only: no code is unpickled)."""
        blob = torch.load(path, weights_only=True)
        shape = blob["shape"]
        twin = cls(shape["n_in"], shape["n_out"], shape["kind"], **shape["arch"])
        twin.load_state_dict(blob["state_dict"])
        twin.nrmse, twin.nrmse_per_channel = float(blob["nrmse"]), blob["nrmse_per_channel"]
        twin.metadata = blob["metadata"]
        return twin.eval()


def describe(system: PhysicalSystem) -> dict[str, Any]:
    """The system's own description if it has one, else its class and shape."""
    if hasattr(system, "describe"):
        return system.describe()  # type: ignore[no-any-return]
    return {"class": type(system).__name__, "n_in": system.n_in, "n_out": system.n_out}


DriveSampler = Callable[[int, torch.Generator], torch.Tensor]
"""Makes `size` drives [size, n_in] in [0, 1] from a generator: where the twin's data is measured."""


PairSampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor, "list[str] | None"]]
"""Measures `size` pairs itself from a generator: (drives, responses, sources or None), for drives that
depend on earlier measurements (a network's later layers; see pnn.twin_data)."""


def uniform_drives(n_in: int) -> DriveSampler:
    """Uniform random drives in [0, 1]^n_in (the paper's twin data)."""
    return lambda size, gen: torch.rand(size, n_in, generator=gen)


def collect(system: PhysicalSystem, n_samples: int, **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Measure `n_samples` drives (uniform random unless `drives` makes them), `chunk` at a time.

    Each chunk's drives come from its own seed, so a run that resumes from `store` after a crash
    measures exactly the drives it would have measured. `repeats` > 1 measures each drive that
    many times and averages, as the paper's reference twins did, to average out the noise. A
    pool's rows keep the board that measured them (the store's "source"; see `collect_sourced`,
    which takes the same options: seed, chunk, repeats, store, show_progress, drives, pairs).
    `pairs`, where given, measures each chunk itself in place of `drives` (pnn.twin_data).
    """
    found, response, _ = collect_sourced(system, n_samples, **options)
    return found, response


def collect_sourced(
    system: PhysicalSystem,
    n_samples: int,
    *,
    seed: int = 0,
    chunk: int = 256,
    repeats: int = 1,
    store: DataStore | None = None,
    show_progress: bool = True,
    drives: DriveSampler | None = None,
    pairs: PairSampler | None = None,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """`collect`, also returning the source of each row (None when the system reports none)."""
    make = drives or uniform_drives(system.n_in)
    n_chunks = math.ceil(n_samples / chunk)
    done = store.n_chunks if store is not None else 0
    parts: list[tuple[torch.Tensor, torch.Tensor]] = []
    sources: list[np.ndarray] = []
    if done:
        d, r = store.load()  # type: ignore[union-attr]
        parts.append((torch.from_numpy(d), torch.from_numpy(r)))
        old = store.load_extra("source")  # type: ignore[union-attr]
        if old is not None:
            sources.append(old)
    for index in progress(range(done, n_chunks), "measuring twin data", show=show_progress, initial=done,
                          status=system_status(system)):
        size = min(chunk, n_samples - index * chunk)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
        if pairs is not None:
            drive, response, source = pairs(size, gen)
        else:
            drive = make(size, gen)
            response, source = measure(system, drive)
        if source is None and repeats > 1:
            response = (response + sum(measure(system, drive)[0] for _ in range(repeats - 1))) / repeats
        extra = {} if source is None else {"source": np.array(source)}
        if store is not None:
            store.append(drive.numpy(), response.numpy(), **extra)
        parts.append((drive, response))
        if source is not None:
            sources.append(np.array(source))
    found = torch.cat([d for d, _ in parts])[:n_samples]
    response = torch.cat([r for _, r in parts])[:n_samples]
    return found, response, np.concatenate(sources)[:n_samples] if sources else None


def nrmse(predicted: torch.Tensor, measured: torch.Tensor) -> tuple[float, torch.Tensor]:
    """RMS error over the std of the measured responses: overall, and per output channel."""
    err = (predicted - measured).pow(2)
    std = measured.std(dim=0).clamp_min(1e-12)
    overall = err.mean().sqrt() / measured.std().clamp_min(1e-12)
    return float(overall), err.mean(dim=0).sqrt() / std


def fit(
    drives: torch.Tensor,
    responses: torch.Tensor,
    *,
    seed: int = 0,
    kind: str = "mlp",
    epochs: int = 300,
    batch_size: int = 128,
    lr: float | None = None,
    weight_decay: float = 1e-5,
    holdout: float = 0.1,
    show_progress: bool = True,
    **arch: Any,
) -> Twin:
    """Fit a Twin on (drive, response) pairs; the last `holdout` fraction measures its NRMSE.

    `arch` goes to the architecture: `hidden` for "mlp" and "shg", `channels` and `kernel` for
    "temporal". `lr` (the one-cycle schedule's peak) defaults to the architecture's own.
    """
    torch.manual_seed(seed)
    n_test = max(1, int(len(drives) * holdout))
    x, y, x_test, y_test = drives[:-n_test], responses[:-n_test], drives[-n_test:], responses[-n_test:]
    twin = Twin(drives.shape[1], responses.shape[1], kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()})
    twin.y_mean.copy_(y.mean(0))
    twin.y_std.copy_(y.std(0).clamp_min(1e-6))
    lr = twin_models.learning_rate(kind) if lr is None else lr
    opt = torch.optim.AdamW(twin.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps_per_epoch)
    scale = twin.y_std  # loss on standardised outputs so every channel counts equally
    bar = progress(range(epochs), "fitting twin", show=show_progress)
    for _ in bar:
        for idx in torch.randperm(len(x)).split(batch_size):
            loss = ((twin(x[idx]) - y[idx]) / scale).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    twin.eval()
    with torch.no_grad():
        twin.nrmse, twin.nrmse_per_channel = nrmse(twin(x_test), y_test)
    twin.metadata.update(n_train=len(x), n_test=n_test, kind=kind, arch=twin.arch, epochs=epochs)
    return twin


def fit_per_source(
    drives: torch.Tensor, responses: torch.Tensor, sources: np.ndarray | list[str] | None, **options: Any
) -> dict[str, Twin]:
    """One twin per source, each fitted (by `fit`, with `options`) on the rows that source measured.

    Without sources every row is one system's: one twin under the id "". The one per-source fit:
    experiment.py, pipeline.py and `fit_twins` all come here.
    """
    if sources is None:
        groups = {"": torch.ones(len(drives), dtype=torch.bool)}
    else:
        labels = np.asarray(sources).astype(str)
        groups = {str(s): torch.from_numpy(labels == s) for s in sorted(set(labels))}  # str: np.str_ would not reload
    twins = {}
    for source, rows in groups.items():
        twin = fit(drives[rows], responses[rows], **options)
        twin.metadata.update(source=source, n_samples=int(rows.sum()))
        twins[source] = twin
    return twins


def fit_twins(system: PhysicalSystem, n_samples: int, *, seed: int = 0, chunk: int = 256,
              drives: DriveSampler | None = None, **options: Any) -> dict[str, Twin]:
    """Measure `n_samples` drives through `system` and fit one twin per source that measured them.

    A pool's chunks go to all its boards at once; a system without sources gets one twin under "".
    `options` go to `fit` (kind, epochs, hidden, show_progress, ...).
    """
    found, response, sources = collect_sourced(system, n_samples, seed=seed, chunk=chunk, drives=drives,
                                               show_progress=options.get("show_progress", True))
    twins = fit_per_source(found, response, sources, seed=seed, **options)
    for twin in twins.values():
        twin.metadata.update(system=describe(system), seed=seed)
    return twins


def fit_twin(
    system: PhysicalSystem,
    n_samples: int,
    *,
    seed: int = 0,
    chunk: int = 256,
    repeats: int = 1,
    store: DataStore | str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    **options: Any,
) -> Twin:
    """Collect `n_samples` random drives from `system` and fit a twin to them.

    Args:
        system: any PhysicalSystem.
        n_samples: drives to measure (10% are held out for `twin.nrmse`).
        seed: seeds the drives and the fit.
        chunk: drives per measurement call (and per durable store chunk).
        repeats: measure each drive this many times and average.
        store: a DataStore or folder; collection resumes from what it already holds.
        **options: passed to `fit` (kind, epochs, batch_size, lr, weight_decay, holdout, and the
            architecture's own options: hidden for "mlp", channels / kernel for "temporal").

    Returns:
        A Twin with `nrmse`, `nrmse_per_channel` and `metadata` (system description, data size).
    """
    if n_samples < 10:
        raise ValueError(f"n_samples={n_samples} is too few to fit and test a twin; use at least 10")
    description = describe(system)
    if store is not None and not isinstance(store, DataStore):
        store = DataStore(store, meta={"system": description, "seed": seed, "chunk": chunk, "repeats": repeats})
    drives, responses = collect(
        system, n_samples, seed=seed, chunk=chunk, repeats=repeats, store=store, show_progress=show_progress
    )
    twin = fit(drives, responses, seed=seed, show_progress=show_progress, **options)
    twin.metadata.update(system=description, n_samples=n_samples, seed=seed, repeats=repeats)
    return twin


def save_twins(twins: dict[str, Twin], folder: Path) -> None:
    """twin.pt for one system; twins/NN.pt plus twins/index.json (board id -> file) for a pool."""
    if list(twins) == [""]:
        twins[""].save(folder / "twin.pt")
        return
    (folder / "twins").mkdir(exist_ok=True)
    index = {source: f"{i:02d}.pt" for i, source in enumerate(twins)}
    for source, twin in twins.items():
        twin.save(folder / "twins" / index[source])
    (folder / "twins" / "index.json").write_text(json.dumps(index, indent=1))


def load_twins(folder: Path) -> Twin | dict[str, Twin] | None:
    """What save_twins wrote: a Twin, a dict board id -> Twin, or None if the folder has none."""
    if (folder / "twins" / "index.json").exists():
        index = json.loads((folder / "twins" / "index.json").read_text())
        return {source: Twin.load(folder / "twins" / name) for source, name in index.items()}
    return Twin.load(folder / "twin.pt") if (folder / "twin.pt").exists() else None
