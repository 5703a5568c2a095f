"""Pipelined PAT: hardware busy fraction and test accuracy per epoch, pipeline off (plain PAT) and on.

    python bench/pipeline.py [--quick] [--boards 2] [--epochs 8] [--transport mqtt|sim] [--seeds 0 1]

Real-time simulated electronic boards (64-sample drives at 10 kS/s plus 8 settle ticks: 7.2 ms an
example), each with its own seed and its own twin (fitted on that board's rows), serve a 2-layer
physical network on the digits task. Over MQTT (default) the boards run in a second process behind
a real mosquitto, as separate hardware would; `--transport sim` keeps them in this process. Both
runs refine the twins online from the pairs training measures (every 5 steps), which is host work
the pipeline can hide. Runs: off (plain PAT), on (the boards run the next batch while the host
trains on this one: one-step-stale gradients) and, with --micro M, on+micro (as on, and each batch's
hardware pass is cut into M micro-batches so the boards also keep working across layer boundaries).
Busy = board time / (wall time x boards) over each epoch's training steps.
Writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Broker  # noqa: E402  (the test suite's real-mosquitto helper)

from pnn.data import digits  # noqa: E402
from pnn.devices import DevicePool  # noqa: E402
from pnn.pipeline import PipelineConfig, fit_twins, train_pipelined  # noqa: E402
from pnn.train import TrainConfig  # noqa: E402

BOARD = "sim://electronic?seed={seed}&n_in=64&n_out=16&rate=10000&settle=8&substeps=1&realtime=1"
# name -> (batches the hardware runs ahead, micro-batches on?)
MODES = {"off": (0, False), "on": (1, False), "on+micro": (1, True)}
LINK = "n_in=64&n_out=16&rate=10000&settle=8&timeout=2&reconnect=60"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (one run each, off and on)")
    parser.add_argument("--transport", default="mqtt", choices=["mqtt", "sim"])
    parser.add_argument("--twin-samples", type=int, default=3000)
    parser.add_argument("--micro", type=int, default=1,
                        help="> 1: a third run, pipeline + this many micro-batches (hides link latency at layer "
                             "boundaries; on one shared CPU it costs more than it saves)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, smaller twin data")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "pipeline.json"))
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.twin_samples = 2, 1000
    torch.set_num_threads(1)
    console = Console()
    modes = {k: v for k, v in MODES.items() if not v[1] or args.micro > 1}
    urls = [BOARD.format(seed=10 + i) for i in range(args.boards)]
    broker = server = None
    if args.transport == "mqtt":
        broker = Broker(Path(tempfile.mkdtemp(prefix="pnn-bench-")))
        with open(broker.config, "a") as conf:  # keep the broker's own account of connections
            conf.write(f"log_dest file {broker.workdir / 'mosquitto.log'}\nlog_type all\nconnection_messages true\n")
        broker.start()
        console.print(f"broker log: {broker.workdir / 'mosquitto.log'}")
        server = subprocess.Popen([sys.executable, "-m", "pnn.testing.simserve", f"--mqtt={broker.host}:{broker.port}",
                                   *(f"--board=pipe-{i}={u}" for i, u in enumerate(urls))], stderr=subprocess.DEVNULL)
        urls = [f"mqtt://{broker.host}:{broker.port}/pipe-{i}?{LINK}" for i in range(args.boards)]
    runs: dict[str, list[dict]] = {}
    try:
        with DevicePool(urls) as pool:
            console.print(f"fitting {args.boards} twins on {args.twin_samples} measured drives ...")
            twins = fit_twins(pool, args.twin_samples, epochs=100, show_progress=False)
            console.print("twin NRMSE: " + ", ".join(f"{t.nrmse:.3f}" for t in twins.values()))
            task = digits()
            for seed in args.seeds:
                for name, (ahead, micro) in modes.items():
                    micro = args.micro if micro else 1  # each run refines its own copy of the fitted twins
                    cfg = TrainConfig(depth=2, epochs=args.epochs, batch_size=32, lr=0.02, seed=seed)
                    pcfg = PipelineConfig(pipeline=ahead, micro_batches=micro, refine_every=5, refine_steps=10)
                    result = train_pipelined(task, pool, twins, cfg, pcfg, show_progress=False)
                    runs[f"seed{seed}-{name}"] = result.history
                    last = result.history[-1]
                    console.print(f"seed {seed} {name} (pipeline={ahead}, micro_batches={micro}): "
                                  f"test {100 * last['test_accuracy']:.1f}%, busy {100 * last['busy']:.1f}%")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if broker is not None:
            broker.stop()
    table = Table(title=f"pipelined PAT, {args.boards} real-time electronic boards over {args.transport}, 2 layers, digits")
    table.add_column("seed", justify="right")
    table.add_column("epoch", justify="right")
    for name in modes:
        table.add_column(f"busy {name}", justify="right")
    for name in modes:
        table.add_column(f"test acc {name}", justify="right")
    table.add_column("twin NRMSE (online)", justify="right")
    summary = {}
    for seed in args.seeds:
        histories = [runs[f"seed{seed}-{name}"] for name in modes]
        for rows in zip(*histories, strict=True):
            table.add_row(str(seed), str(rows[0]["epoch"]), *(f"{100 * r['busy']:.1f}%" for r in rows),
                          *(f"{100 * r['test_accuracy']:.1f}%" for r in rows), f"{rows[-1].get('twin_nrmse', float('nan')):.3f}")
        off = histories[0]
        summary[seed] = {name: {
            "busy": sum(r["busy"] for r in h) / len(h), "final_accuracy": h[-1]["test_accuracy"],
            "accuracy_cost_points": 100 * (off[-1]["test_accuracy"] - h[-1]["test_accuracy"]),
            "speedup": sum(r["train_seconds"] for r in off) / sum(r["train_seconds"] for r in h),
            "seconds_per_epoch": sum(r["train_seconds"] for r in h) / len(h),
        } for name, h in zip(modes, histories, strict=True)}
    console.print(table)
    for seed, s in summary.items():
        for name, m in s.items():
            console.print(f"seed {seed} {name}: mean busy {100 * m['busy']:.1f}%, {m['seconds_per_epoch']:.1f} s/epoch "
                          f"({m['speedup']:.2f}x), accuracy cost {m['accuracy_cost_points']:+.1f} points vs off")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "config": {"boards": args.boards, "transport": args.transport, "board_url": BOARD, "epochs": args.epochs,
                   "twin_samples": args.twin_samples, "batch_size": 32, "depth": 2, "refine_every": 5,
                   "modes": {k: {"pipeline": a, "micro_batches": args.micro if m else 1} for k, (a, m) in modes.items()},
                   "goal": "busy >= 90% with pipelining, accuracy within 1 point"},
        "summary": summary, "history": runs,
    }, indent=1))
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
