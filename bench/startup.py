"""How fast `pnn` answers before any work: --help, --version, `import pnn`; prints a table, writes JSON.

    python bench/startup.py [--repeats 5]

Each row is the median wall time of fresh interpreters (the machine's load counts: run it with the
machine as idle as you can).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "pnn --help": [sys.executable, "-m", "pnn.cli", "--help"],
    "pnn --version": [sys.executable, "-m", "pnn.cli", "--version"],
    "import pnn": [sys.executable, "-c", "import pnn"],
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "import torch (for scale)": [sys.executable, "-c", "import torch"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rows = {}
    for name, cmd in CASES.items():
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
            times.append(time.perf_counter() - t)
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    print(f"{'command':28} {'median s':>9} {'min s':>7} {'max s':>7}   ({args.repeats} fresh interpreters each)")
    for name, r in rows.items():
        print(f"{name:28} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['max_s']:7.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
