"""How fast `pnn` answers before any work: --help, --version, `import pnn`; prints a table, writes JSON.

    python bench/startup.py [--repeats 5]

Each row is the median over fresh interpreters of the wall time and of the CPU time (user + system) the
process used. On a busy machine the wall time is mostly waiting for a core; the CPU time is not, and the
"python -c pass" row is the floor that no Python command goes below.
"""

from __future__ import annotations

import argparse
import json
import resource
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
        times, cpu = [], []
        for _ in range(args.repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
            times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        rows[name] = {"wall_median_s": statistics.median(times), "wall_min_s": min(times),
                      "cpu_median_s": statistics.median(cpu)}  # fmt: skip
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"{'command':28} {'wall median s':>13} {'wall min s':>10} {'CPU median s':>12}   "
          f"({args.repeats} fresh interpreters each; load average {load})")  # fmt: skip
    for name, r in rows.items():
        print(f"{name:28} {r['wall_median_s']:13.3f} {r['wall_min_s']:10.3f} {r['cpu_median_s']:12.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
