"""How throughput scales with boards: N real-time simulated boards behind one DevicePool.

    python bench/scaling.py [--quick] [--n 1 2 4 8 16 32] [--transports sim mqtt] [--system electronic]

Each board is a simulated board that takes the time a real one would: 196-sample drives at 10 kS/s
plus `settle` ticks at rest per example (about 49 examples/s). In-process (`sim://`) the boards
share this process; over MQTT they run in a second process behind a real mosquitto and the pool
talks to them as it would to firmware. For each N the pool gets the same work per board (a stream
of batches, several in flight) and we report samples/s, efficiency = throughput / (N x one board's
throughput on the same transport), the boards' busy fraction and this process's CPU use. The
boards' physics runs on this machine's CPU too (unlike real boards), with one integrator sub-step
per tick to keep that cost small; the CPU column shows when the simulation, not the pool, is the limit.
Writes bench/results/scaling.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Broker  # noqa: E402  (the test suite's real-mosquitto helper)

from pnn.devices import DevicePool  # noqa: E402

N_DRIVE, N_OUT, RATE, SETTLE, CHUNK = 196, 49, 10_000, 4, 64


def board_url(system: str, seed: int, substeps: int) -> str:
    extra = f"&substeps={substeps}" if system != "optical" else ""
    return (f"sim://{system}?seed={seed}&n_in={N_DRIVE}&n_out={N_OUT}&rate={RATE}&settle={SETTLE}"
            f"&realtime=1&max_batch={CHUNK}{extra}")


def link(n: int) -> str:
    return f"n_in={N_DRIVE}&n_out={N_OUT}&rate={RATE}&settle={SETTLE}&reconnect=120&timeout=5"


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (or of `pid`, from /proc)."""
    if pid is None:
        t = time.process_time()
        return t
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime in clock ticks (USER_HZ = 100)


def measure(pool: DevicePool, batches: int, server_pid: int | None) -> dict:
    n = len(pool.ids)
    batch = 2 * CHUNK * n  # the pool cuts it into two chunks of CHUNK per board
    drives = [torch.rand(batch, N_DRIVE, generator=torch.Generator().manual_seed(i)) for i in range(batches + 1)]
    pool(drives[0])  # warm-up: connections, threads, first physics calls
    busy0 = sum(s["busy_s"] for s in pool.stats().values())
    cpu0, server0, t0 = cpu_seconds(), cpu_seconds(server_pid) if server_pid else 0.0, time.perf_counter()
    futures = [pool.submit(d) for d in drives[1:]]  # all in flight: the boards never wait for the host
    rows = sum(len(f.result()[0]) for f in futures)
    wall = time.perf_counter() - t0
    busy = sum(s["busy_s"] for s in pool.stats().values()) - busy0
    return {
        "n": n, "samples": rows, "seconds": wall, "samples_per_s": rows / wall, "busy": busy / (wall * n),
        "host_cpu": (cpu_seconds() - cpu0) / wall,
        "server_cpu": (cpu_seconds(server_pid) - server0) / wall if server_pid else None,
        "retries": sum(s["retries"] for s in pool.stats().values()),
    }


def run_sim(n: int, args: argparse.Namespace) -> dict:
    with DevicePool([board_url(args.system, i, args.substeps) for i in range(n)]) as pool:
        return measure(pool, args.batches, None)


def run_mqtt(n: int, args: argparse.Namespace, broker: Broker) -> dict:
    boards = [f"--board=scale-{i}={board_url(args.system, i, args.substeps)}" for i in range(n)]
    server = subprocess.Popen([sys.executable, "-m", "pnn.testing.simserve", f"--mqtt={broker.host}:{broker.port}",
                               *boards], stderr=subprocess.DEVNULL)
    try:
        urls = [f"mqtt://{broker.host}:{broker.port}/scale-{i}?{link(n)}" for i in range(n)]
        with DevicePool(urls) as pool:  # waits (reconnect=120 s) until every board is online
            return measure(pool, args.batches, server.pid)
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--transports", nargs="+", default=["sim", "mqtt"], choices=["sim", "mqtt"])
    parser.add_argument("--system", default="electronic", choices=["electronic", "mechanical", "optical"])
    parser.add_argument("--substeps", type=int, default=1, help="integrator sub-steps of the simulated physics")
    parser.add_argument("--batches", type=int, default=2, help="batches of 2 x 64 examples per board, in flight at once")
    parser.add_argument("--quick", action="store_true", help="N = 1, 2, 4 only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scaling.json"))
    args = parser.parse_args()
    if args.quick:
        args.n = [n for n in args.n if n <= 4]
    torch.set_num_threads(1)
    console = Console()
    ideal = RATE / (N_DRIVE + SETTLE)
    results: dict[str, list[dict]] = {}
    broker = None
    try:
        for transport in args.transports:
            if transport == "mqtt":
                broker = Broker(Path(__import__("tempfile").mkdtemp(prefix="pnn-bench-")))
                broker.start()
            rows = []
            for n in sorted(set(args.n) | {1}):
                row = run_sim(n, args) if transport == "sim" else run_mqtt(n, args, broker)  # type: ignore[arg-type]
                rows.append(row)
                console.print(f"{transport} N={n}: {row['samples_per_s']:.1f} samples/s")
            one = rows[0]["samples_per_s"]
            for row in rows:
                row["efficiency"] = row["samples_per_s"] / (row["n"] * one)
                row["efficiency_vs_ideal"] = row["samples_per_s"] / (row["n"] * ideal)
            results[transport] = [r for r in rows if r["n"] in args.n]
    finally:
        if broker is not None:
            broker.stop()
    table = Table(title=f"DevicePool scaling: real-time {args.system} boards, {N_DRIVE}-sample drives at {RATE} S/s "
                        f"(ideal {ideal:.1f} samples/s a board)")
    for column in ("transport", "N", "samples/s", "efficiency", "vs ideal", "board busy", "host CPU", "board-sim CPU",
                   "retries"):
        table.add_column(column, justify="right")
    for transport, rows in results.items():
        for r in rows:
            server = "-" if r["server_cpu"] is None else f"{100 * r['server_cpu']:.0f}%"
            table.add_row(transport, str(r["n"]), f"{r['samples_per_s']:.1f}", f"{r['efficiency']:.3f}",
                          f"{r['efficiency_vs_ideal']:.3f}", f"{100 * r['busy']:.0f}%", f"{100 * r['host_cpu']:.0f}%",
                          server, str(r["retries"]))
    console.print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "config": {"n_drive": N_DRIVE, "n_out": N_OUT, "rate": RATE, "settle": SETTLE, "chunk": CHUNK,
                   "system": args.system, "substeps": args.substeps, "batches": args.batches,
                   "ideal_samples_per_s_per_board": ideal, "goal": "efficiency >= 0.9 up to N = 32"},
        "results": results,
    }, indent=1))
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
