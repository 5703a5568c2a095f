"""Rebuild a run folder's plots from what it recorded; never re-measures the hardware."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import plots
from .link.errors import UserError
from .store import DataStore
from .twin import load_twins


class ReportError(UserError, ValueError):
    """The folder is not a run folder, or lacks what a plot needs."""


def regenerate(run_dir: Path) -> list[Path]:
    """Write training.png, twin.png, confusion.png and devices.png where their records exist."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ReportError(f"'{run_dir}' is not a run folder (no config.json); pass a folder made by pnn demo or pnn train")
    name = json.loads((run_dir / "config.json").read_text())["experiment"]["name"]
    written = []
    rows = plots.read_metrics(run_dir)
    if rows:
        written.append(plots.training_curves(rows, run_dir / "training.png", name))
    twins = load_twins(run_dir)
    if twins is not None and (run_dir / "twin-data").exists():
        store = DataStore(run_dir / "twin-data")
        drives, measured = store.load()
        if isinstance(twins, dict):  # a pool: show the first board's twin on that board's rows
            source, twin = next(iter(twins.items()))
            rows = store.load_extra("source") == source
            drives, measured = drives[rows], measured[rows]
        else:
            twin = twins
        # The last rows were held out of the fit, so this shows the twin on data it never saw.
        drive = torch.from_numpy(drives[-4:])
        with torch.no_grad():
            pairs = np.stack([measured[-4:], twin(drive).numpy()])
        written.append(plots.twin_vs_measurement(pairs, run_dir / "twin.png", twin.nrmse, name))
    if (run_dir / "predictions.json").exists():
        p = json.loads((run_dir / "predictions.json").read_text())
        trainer = "pat" if "pat" in p["predicted"] else next(iter(p["predicted"]), None)
        if trainer:
            written.append(plots.confusion_matrix(np.array(p["truth"]), np.array(p["predicted"][trainer]),
                                                  p["classes"], run_dir / "confusion.png", f"{name}: {trainer} on the system"))
    if (run_dir / "devices.json").exists():
        written.append(plots.device_throughput(json.loads((run_dir / "devices.json").read_text()), run_dir / "devices.png"))
    return written
