"""The `pnn` command. Every failure a user can cause ends in one line saying what to do, and exit code 2."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from . import experiment

DEMO_SYSTEMS = ("electronic", "mechanical", "optical")


class UsageError(Exception):
    """A mistake the user can mend; printed as one line."""


def demo_config(system: str, quick: bool, seed: int, data: str | None = None) -> dict:
    """The `pnn demo` experiment: a simulated board, 3 physical layers, realistic noise and drift.

    The twin is the paper's kind (an MLP) fit on 2,000 measurements: good enough for PAT, not good
    enough for in-silico training, which is the point the demo makes.
    """
    raw: dict = {
        "experiment": {"name": f"demo-{system}"},
        "system": {"kind": system, "seed": seed},
        "train": {"depth": 3, "epochs": 20, "batch_size": 64, "seed": seed},
        "twin": {"samples": 2000, "epochs": 100},
    }
    if system == "mechanical":
        raw["system"]["noise"] = {"drift": 0.001}  # a few kelvin of drift for a high-Q plate
        raw["train"]["epochs"] = 30
    if system == "optical":
        if data is None:
            raise UsageError("the optical demo runs the vowel task: pass --data PATH/TO/vowels.csv "
                             "(columns f0..f11,label,vowel,split)")
        raw["task"] = {"name": "vowels", "data": data}
        raw["system"].update(n_in=24, n_out=12)
        raw["train"].update(encoder="concat", batch_size=16, epochs=60, depth=1)
    if quick:
        raw["train"]["epochs"] = max(2, raw["train"]["epochs"] // 5)
        raw["twin"].update(samples=500, epochs=30)
    return experiment.resolve(raw)


def new_run_dir(root: str, name: str) -> Path:
    path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{n}"
    return path


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    config = demo_config(args.system, args.quick, args.seed, args.data)
    run_dir = new_run_dir(args.runs, config["experiment"]["name"])
    console.print(f"[bold]pnn demo[/]: simulated {args.system} board, no hardware needed. Run folder: {run_dir}")
    experiment.run(config, run_dir, console=console)
    console.print(f"plots: {run_dir}/training.png, {run_dir}/twin.png, {run_dir}/confusion.png")
    return 0


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    config = experiment.load(args.experiment)
    if args.epochs is not None:
        config["train"]["epochs"] = args.epochs
    run_dir = Path(args.out) if args.out else new_run_dir(args.runs, config["experiment"]["name"])
    console.print(f"[bold]pnn train[/] {args.experiment} -> {run_dir}")
    experiment.run(config, run_dir, console=console)
    return 0


def _experiment_dir(args: argparse.Namespace) -> tuple[dict, Path]:
    config = experiment.load(args.experiment)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))
    return config, run_dir


def cmd_collect(args: argparse.Namespace, console: Console) -> int:
    config, run_dir = _experiment_dir(args)
    if args.samples is not None:
        config["twin"]["samples"] = args.samples
    system = experiment.make_system(config["system"])
    store = experiment.collect_data(config, system, run_dir)
    console.print(f"{run_dir / 'twin-data'}: {store.verify()} samples in {store.n_chunks} verified chunks")
    return 0


def cmd_fit_twin(args: argparse.Namespace, console: Console) -> int:
    config, run_dir = _experiment_dir(args)
    twin = experiment.fit_from_store(config, run_dir)
    console.print(f"{run_dir / 'twin.pt'}: held-out NRMSE {twin.nrmse:.3f} on {twin.metadata['n_test']} samples")
    return 0


def cmd_eval(args: argparse.Namespace, console: Console) -> int:
    acc = experiment.evaluate(Path(args.run), args.trainer)
    console.print(f"{args.run}: {args.trainer} test accuracy on the system now: {100 * acc:.1f}%")
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .report import regenerate

    for path in regenerate(Path(args.run)):
        console.print(f"wrote {path}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that points at --help, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pnn", description="Physical neural networks with physics-aware training.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", help="train a physical network on a simulated board (no hardware needed)",
                          description="Simulated board -> twin data -> twin fit -> digital, in-silico and PAT "
                          "training -> table and plots in a run folder.")
    demo.add_argument("--system", choices=DEMO_SYSTEMS, default="electronic", help="which simulated system")
    demo.add_argument("--quick", action="store_true", help="a much shorter run, for a first look")
    demo.add_argument("--seed", type=int, default=0, help="board and training seed")
    demo.add_argument("--data", help="task data file (the optical demo needs the vowels CSV)")
    demo.add_argument("--runs", default="runs", help="folder for run folders (default: runs)")
    demo.set_defaults(handler=cmd_demo)

    tr = sub.add_parser("train", help="run an experiment from a TOML file (see examples/)")
    tr.add_argument("experiment", help="experiment file, e.g. examples/electronic-digits.toml")
    tr.add_argument("--epochs", type=int, help="override [train] epochs")
    tr.add_argument("--out", help="run folder (default: a new one under --runs)")
    tr.add_argument("--runs", default="runs", help="folder for run folders (default: runs)")
    tr.set_defaults(handler=cmd_train)

    col = sub.add_parser("collect", help="measure twin data into a crash-safe store (resumes after a crash)")
    col.add_argument("experiment", help="experiment file naming the system (see examples/)")
    col.add_argument("--out", required=True, help="folder for twin-data/ (rerun with the same folder to resume)")
    col.add_argument("--samples", type=int, help="override [twin] samples")
    col.set_defaults(handler=cmd_collect)

    fit = sub.add_parser("fit-twin", help="fit a digital twin on collected data")
    fit.add_argument("experiment", help="experiment file (its [twin] section says how)")
    fit.add_argument("--out", required=True, help="the folder pnn collect wrote; twin.pt goes there")
    fit.set_defaults(handler=cmd_fit_twin)

    ev = sub.add_parser("eval", help="re-measure a trained network's test accuracy on the system")
    ev.add_argument("run", help="a run folder")
    ev.add_argument("--trainer", default="pat", choices=("digital", "in-silico", "pat"))
    ev.set_defaults(handler=cmd_eval)

    rep = sub.add_parser("report", help="regenerate a run folder's plots from its records")
    rep.add_argument("run", help="a run folder written by pnn demo / pnn train")
    rep.set_defaults(handler=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Long paths stay on one line (greppable); tables get 120 columns when stdout is not a terminal.
    console = Console(soft_wrap=True, width=shutil.get_terminal_size((120, 24)).columns)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args, console)
    except (UsageError, ValueError, FileNotFoundError, ConnectionError) as e:
        print(f"pnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
