"""How fast the simulated physical systems measure a batch: prints a table, writes bench/results/physics_speed.json.

Run: python bench/physics_speed.py [--threads 2] [--repeats 3]
Each row times `system(drive)` (the noisy measurement) and `system.ideal(drive)` forward + backward
(what a PAT step through an exact twin costs) on B uniform random drives.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from pnn.physics import Electronic, Mechanical, Noise, Optical

CASES = [  # (class, batch, n_in, n_out)
    (Electronic, 1000, 196, 196),
    (Electronic, 1000, 64, 64),
    (Mechanical, 1000, 196, 196),
    (Mechanical, 1000, 64, 64),
    (Optical, 1000, 196, 196),
    (Optical, 1000, 64, 64),
]


def best_of(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'class':<11} {'B':>5} {'n_in':>5} {'n_out':>5} {'build s':>8} {'call s':>8} {'ideal f+b s':>12}")
    for cls, batch, n_in, n_out in CASES:
        start = time.perf_counter()
        system = cls(n_in=n_in, n_out=n_out, seed=1, noise=Noise())
        build = time.perf_counter() - start
        drive = torch.rand(batch, n_in, generator=torch.Generator().manual_seed(0))
        call = best_of(lambda s=system, d=drive: s(d), args.repeats)

        def ideal_step(s=system, d=drive) -> None:  # noqa: ANN001
            x = d.clone().requires_grad_(True)
            s.ideal(x).sum().backward()

        ideal = best_of(ideal_step, args.repeats)
        rows.append({"class": cls.__name__, "B": batch, "n_in": n_in, "n_out": n_out,
                     "build_seconds": build, "seconds": call, "ideal_fwd_bwd_seconds": ideal})  # fmt: skip
        print(f"{cls.__name__:<11} {batch:>5} {n_in:>5} {n_out:>5} {build:>8.3f} {call:>8.3f} {ideal:>12.3f}")
    out = Path(__file__).resolve().parent / "results" / "physics_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
            "machine": platform.machine(), "python": platform.python_version()}  # fmt: skip
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
