"""The `pnn demo` experiment: which simulated board, layers, twin and epochs the demo runs.

Light on purpose (config.py loads only when the experiment is built): `pnn --help` reads DEMO_SEEDS.
"""

from __future__ import annotations

from typing import Any

DEMO_SEEDS = 3  # the demo's table is a mean +- std over this many training seeds


def config(system: str, quick: bool, seed: int, data: str | None = None, seeds: int | None = None) -> dict[str, Any]:
    """The `pnn demo` experiment: a simulated board, 3 physical layers, realistic noise and drift.

    The twin is the paper's kind (an MLP) fit on 2,000 measurements, half at uniform drives and half
    where training drives the board (`[twin] drives = "mixed"`, pnn.twin_data: its gradient agrees
    better with the exact one there): good enough for PAT, not good enough for in-silico training,
    which is the point the demo makes. Every value, the flags' too,
    is checked before anything is measured.
    """
    raw: dict[str, Any] = {
        "experiment": {"name": f"demo-{system}"},
        "system": {"kind": system, "seed": seed},
        "train": {"depth": 3, "epochs": 6, "batch_size": 64, "seed": seed, "seeds": DEMO_SEEDS},
        "twin": {"samples": 2000, "epochs": 100, "drives": "mixed"},
    }
    if system == "mechanical":
        raw["system"]["noise"] = {"drift": 0.001}  # a few kelvin of drift for a high-Q plate
        raw["train"]["epochs"] = 10
    if system == "optical":
        raw["task"] = {"name": "vowels"}  # the subset shipped with pnn, unless --data names another CSV
        # the hybrid net of bench/pat.py's optical-vowels-2 row: a digital Linear before each of 2 SHG
        # layers, batch statistics between them, 4 averaged spectra per drive (the 4th-power response)
        raw["system"].update(n_in=12, n_out=12)
        raw["train"].update(mix=True, norm="batch", repeats=4, batch_size=16, epochs=40, depth=2)
    if quick:
        raw["train"]["epochs"] = max(2, raw["train"]["epochs"] // 5)
        raw["twin"].update(samples=500, epochs=30)
    from .config import Flag, parse

    flags = {"task.data": Flag("--data", data), "train.seeds": Flag("--seeds", seeds)}
    return parse(raw, flags).as_dict()
