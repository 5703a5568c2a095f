"""The `pnn` command. Every failure a user can cause ends in one line saying what to do, and exit code 2.

Heavy libraries (torch, matplotlib, the device clients) load inside the commands that need them, so
`pnn --help` and `pnn --version` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from rich.console import Console

from .link.errors import UserError


class UsageError(UserError):
    """A mistake the user can mend; printed as one line."""


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from . import physics  # the one list of kinds; read here, not at parse time, so --help needs no torch

    if args.system not in physics.KINDS:
        choices = ", ".join(repr(k) for k in physics.KINDS)
        args.parser.error(f"argument --system: invalid choice: {args.system!r} (choose from {choices})")
    from . import demo, experiment

    cfg = demo.config(args.system, args.quick, args.seed, args.data, args.seeds)
    run_dir = experiment.new_run_dir(args.runs, cfg["experiment"]["name"])
    console.print(f"[bold]pnn demo[/]: simulated {args.system} board, no hardware needed, "
                  f"{cfg['train']['seeds']} training seeds. Run folder: {run_dir}")  # fmt: skip
    experiment.run(cfg, run_dir, console=console)
    console.print(f"plots: {run_dir}/training.png, {run_dir}/twin.png, {run_dir}/confusion.png")
    return 0


def _train_flags(args: argparse.Namespace) -> dict:
    from .config import Flag

    flags = {"train.epochs": Flag("--epochs", args.epochs), "train.seeds": Flag("--seeds", args.seeds),
             "task.data": Flag("--data", args.data), "system.patience": Flag("--patience", args.patience)}  # fmt: skip
    if args.trainers is not None:
        flags["train.trainers"] = Flag("--trainers", [t for t in args.trainers.split(",") if t])
    return flags


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from . import experiment

    if args.resume:
        console.print(f"[bold]pnn train[/] resuming {args.resume}")
        with _stops_on_outage(Path(args.resume)):
            experiment.run(experiment.load_run(args.resume), Path(args.resume), console=console, resume=True)
        return 0
    if args.experiment is None:
        raise UsageError("pnn train needs an experiment file (e.g. examples/electronic-digits.toml) or --resume RUN_FOLDER")
    from . import config

    cfg = config.load(args.experiment, _train_flags(args)).as_dict()  # every value checked before measuring
    run_dir = Path(args.out) if args.out else experiment.new_run_dir(args.runs, cfg["experiment"]["name"])
    experiment.check_fresh(run_dir)
    console.print(f"[bold]pnn train[/] {args.experiment} -> {run_dir}")
    with _stops_on_outage(run_dir):
        experiment.run(cfg, run_dir, console=console)
    return 0


@contextlib.contextmanager
def _stops_on_outage(run_dir: Path) -> Iterator[None]:
    """Every board stayed away longer than `patience`: the run stops (each epoch is checkpointed as it
    ends) with one line saying so and how to continue it (exit 2)."""
    from .link.errors import OutageError

    try:
        yield
    except OutageError as e:
        raise UsageError(f"{e}; the run stopped, checkpointed at its last whole epoch: "
                         f"continue it with 'pnn train --resume {run_dir}' once the board is back") from e  # fmt: skip


def cmd_collect(args: argparse.Namespace, console: Console) -> int:
    from . import config, experiment

    cfg = config.load(args.experiment, {"twin.samples": config.Flag("--samples", args.samples)}).as_dict()
    store = experiment.collect_into(cfg, experiment.prepare_dir(cfg, args.out))
    console.print(f"{store.root}: {store.verify()} samples in {store.n_chunks} verified chunks")
    return 0


def cmd_fit_twin(args: argparse.Namespace, console: Console) -> int:
    from . import config, experiment

    cfg = config.load(args.experiment).as_dict()
    run_dir = experiment.prepare_dir(cfg, args.out)
    twin = experiment.fit_from_store(cfg, run_dir)
    console.print(f"{run_dir / 'twin.pt'}: held-out NRMSE {twin.nrmse:.3f} on {twin.metadata['n_test']} samples")
    return 0


def cmd_eval(args: argparse.Namespace, console: Console) -> int:
    from . import experiment

    acc = experiment.evaluate(Path(args.run), args.trainer)
    console.print(f"{args.run}: {args.trainer} test accuracy on the system now: {100 * acc:.1f}%")
    return 0


def cmd_sim_board(args: argparse.Namespace, console: Console) -> int:
    from .boards.simboard import SimBoard

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # `kill` stops it as cleanly as Ctrl-C: the firmware process goes too

    with SimBoard(args.seed, args.mqtt, args.id) as board:
        signal.signal(signal.SIGTERM, stop)
        console.print(f"simulated board (seed {args.seed}) running the pnn firmware under MicroPython: {board.url}")
        console.print(f'use it: url = "{board.url}" in an experiment\'s \\[system], or pnn calibrate {board.url}')
        console.print("Ctrl-C stops it.")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C (or `kill`) is how it is meant to stop
            board.serve(lambda code: console.print(f"the firmware exited ({code}); restarting it at {board.url}"))
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .report import regenerate

    for path in regenerate(Path(args.run), complete=True):  # an incomplete run: one line naming what is missing
        console.print(f"wrote {path}")
    return 0


# -- boards: flash, devices, calibrate -----------------------------------------------------------


class _FlashShow:
    """How `pnn flash` looks: a spinner per step, a line per finding, a bar while copying."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def doing(self, what: str) -> contextlib.AbstractContextManager[object]:
        return self.console.status(what)

    def said(self, line: str) -> None:
        self.console.print(line)

    @contextlib.contextmanager
    def copying(self, total: int) -> Iterator[Callable[[str], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        columns = (TextColumn("copying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task("", total=total)
            done = [0]

            def started(dst: str) -> None:
                progress.update(task, completed=done[0], description=dst)
                done[0] += 1

            yield started
            progress.update(task, completed=total, description="done")


def cmd_flash(args: argparse.Namespace, console: Console) -> int:
    from .boards import flash

    job, port = flash.prepare(args.board, args.secrets), args.port
    if args.dry_run:
        console.print(f"pnn flash --dry-run: {len(job.files)} files for {port} (board file {job.path}); nothing is touched")
        for c in job.files:
            console.print(f"  {c}", highlight=False)
        console.print("steps: " + "; ".join(job.steps(reset=not args.no_reset)), highlight=False)
        return 0
    running = flash.flash_board(port, job, reset=not args.no_reset, show=_FlashShow(console))
    if running is None:
        console.print(f"copied {len(job.files)} files; the board stays at the REPL (reset it to start the firmware)")
    else:
        console.print(f"{port}: {running.describe()} answers HELLO. Next: pnn devices --serial {port}; "
                      f"pnn calibrate serial://{port}")  # fmt: skip
    return 0


def _broker_url(text: str) -> str:
    """HOST:PORT or mqtt://[user:password@]HOST:PORT -> the URL list_devices takes."""
    from urllib.parse import urlsplit

    url = text if "://" in text else f"mqtt://{text}"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "mqtt" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise UsageError(f"--mqtt {text!r}: give the broker as HOST:PORT, e.g. --mqtt 192.168.1.10:1883")
    return url


def _device_args(urls: list[str], serial: list[str], mqtt: list[str]) -> tuple[list[str], list[str]]:
    """Ports and brokers from URLs and --serial / --mqtt values: serial:///dev/pts/3 is the port /dev/pts/3."""
    ports, brokers = [], list(mqtt)
    for value in [*urls, *serial]:
        if value.startswith("serial://"):
            ports.append(value.removeprefix("serial://").split("?")[0])
        elif value.startswith("mqtt://"):
            brokers.append(value)
        elif value in urls and "://" in value:
            raise UsageError(f"{value!r}: give a board as serial://PATH or a broker as mqtt://HOST:PORT")
        else:
            ports.append(value)
    return ports, brokers


def cmd_devices(args: argparse.Namespace, console: Console) -> int:
    from .boards import diagnose
    from .boards.discover import table

    serial, mqtt = _device_args(args.urls, args.serial, args.mqtt)
    brokers = [_broker_url(b) for b in mqtt]
    with console.status("asking every port and broker for HELLO"):
        rows = diagnose.survey(serial, brokers, scan_usb=not args.no_scan, prefix=args.prefix, wait=args.wait)
    for r in rows:  # a broker row carries the URL as given: keep its password off the screen
        r["url"] = re.sub(r"^(mqtt://)[^/@]*@", r"\1", r["url"])
    if args.json:
        console.print_json(data=rows)
    elif rows:
        console.print(table(rows))
    if any(r["status"] == "online" for r in rows):
        for r in rows:
            if r["status"] != "online" and not args.json:
                console.print(f"not answering: {diagnose.row_problem(r)}", highlight=False)
        return 0
    if not rows:
        raise UsageError("no boards found: plug one in by USB (USB ports are scanned), or name one with "
                         "--serial PATH or --mqtt HOST:PORT")  # fmt: skip
    raise UsageError("no board answered: " + "; ".join(diagnose.row_problem(r) for r in rows))


def cmd_calibrate(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .boards import calibrate as cal
    from .boards import diagnose
    from .link.errors import ProtocolVersionError

    settings = cal.Settings(args.levels, args.sweeps, args.hold_ms, args.reads)
    cal.measurement_url(args.url, settings)  # a bad URL or setting fails here, before any waiting
    columns = (TextColumn("ramp"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("", total=None)
            result = cal.calibrate(args.url, settings,
                                   lambda done, total: progress.update(task, completed=done, total=total))  # fmt: skip
    except cal.BoardLost:
        raise
    except (ConnectionError, ProtocolVersionError) as e:
        raise UsageError(diagnose.explain(args.url, e)) from None
    json_path, png_path = cal.save(result, args.out)
    console.print(cal.summary(result))
    console.print(f"saved {json_path} and {png_path}")
    if result["usable"] is None:
        raise UsageError("no usable range: the ADC does not follow the DAC; is the loopback wired "
                         "(hardware/calibration.md, section 1)? The readings are saved in " + str(json_path))
    console.print(f"use it: {cal.calibrated_url(args.url, result)}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that points at --help, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}{_suggest(message)}; see '{self.prog} --help'\n")


def _suggest(message: str) -> str:
    """ " (did you mean 'demo'?)" for argparse's invalid-choice and unrecognised-argument messages."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'?([\w-]+)'?", choice.group(2))
        close = difflib.get_close_matches(choice.group(1), options, n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""
    flag = re.search(r"unrecognized arguments: (--[\w-]+)", message)
    if flag:
        known = [o for a in _PARSER_OPTIONS for o in a]
        close = difflib.get_close_matches(flag.group(1), known, n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""
    return ""


_PARSER_OPTIONS: list[list[str]] = []  # every option string of every subcommand, for "did you mean"


def build_parser() -> argparse.ArgumentParser:
    from .demo import DEMO_SEEDS  # (a light module: --help stays quick)

    parser = _Parser(prog="pnn", description="Physical neural networks with physics-aware training.")
    parser.add_argument("--version", action="version", version=f"pnn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also say what the links do (connects, resends); warnings are always shown")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", help="train a physical network on a simulated board (no hardware needed)",
                          description="Simulated board -> twin data -> twin fit -> digital, in-silico and PAT "
                          "training -> table and plots in a run folder.")
    demo.add_argument("--system", default="electronic", help="which simulated system: one of pnn.physics.KINDS "
                      "(electronic, mechanical, optical)")
    demo.add_argument("--quick", action="store_true", help="a much shorter run, for a first look")
    demo.add_argument("--seed", type=int, default=0, help="board seed, and the first training seed")
    demo.add_argument("--seeds", type=int, help=f"training seeds to average over (default {DEMO_SEEDS})")
    demo.add_argument("--data", help="another vowels CSV for the optical demo (default: the subset shipped with pnn)")
    demo.add_argument("--runs", default="runs", help="folder for run folders (default: runs)")
    demo.set_defaults(handler=cmd_demo, parser=demo)

    tr = sub.add_parser("train", help="run an experiment from a TOML file (see examples/)")
    tr.add_argument("experiment", nargs="?", help="experiment file, e.g. examples/electronic-digits.toml")
    tr.add_argument("--resume", metavar="RUN_FOLDER", help="continue a stopped or killed run from its last checkpoint")
    tr.add_argument("--epochs", type=int, help="override [train] epochs")
    tr.add_argument("--seeds", type=int, help="override [train] seeds: training seeds to average over")
    tr.add_argument("--trainers", help="override [train] trainers, comma-separated (e.g. digital,pat)")
    tr.add_argument("--data", help="override [task] data (a path relative to the current folder)")
    tr.add_argument("--patience", type=float, help="override [system] patience: seconds to wait when every board is gone")
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
    ev.add_argument("--trainer", default="pat", help="which trained network (default pat)")
    ev.set_defaults(handler=cmd_eval)

    sim = sub.add_parser("sim-board", help="run the real firmware on a simulated board (no hardware needed)",
                         description="Starts the firmware under MicroPython's unix port with a simulated circuit "
                         "and prints the URL to give pnn: a serial port path, or a device id on an MQTT broker.")
    sim.add_argument("--seed", type=int, default=0, help="which simulated unit (component tolerances, noise)")
    sim.add_argument("--mqtt", metavar="HOST:PORT", help="serve over this MQTT broker instead of a serial port")
    sim.add_argument("--id", help="device id on the broker (default sim-SEED)")
    sim.set_defaults(handler=cmd_sim_board)

    rep = sub.add_parser("report", help="regenerate a run folder's plots from its records")
    rep.add_argument("run", help="a run folder written by pnn demo / pnn train")
    rep.set_defaults(handler=cmd_report)

    fl = sub.add_parser("flash", help="copy the pnn firmware and a board file to a MicroPython board (mpremote)",
                        description="Leave the pnn protocol if the board runs it, check that the board fits the "
                        "board file, copy main.py, lib/pnn_fw, lib/pnn_protocol and board.json with mpremote, "
                        "reset, and wait for HELLO.")
    fl.add_argument("port", help="the board's serial port, e.g. /dev/ttyUSB0, /dev/ttyACM0, COM3")
    fl.add_argument("--board", required=True,
                    help="board file: a name from firmware/boards (esp32, rp2040, rp2040_mcp4725, pico_w, sim) "
                    "or the path of your own copy")
    fl.add_argument("--secrets", help="a secrets.json to copy too (Wi-Fi and broker, see firmware/README.md)")
    fl.add_argument("--dry-run", action="store_true", help="list what would be copied where, touch nothing")
    fl.add_argument("--no-reset", action="store_true", help="leave the board at the REPL after copying")
    fl.set_defaults(handler=cmd_flash)

    dv = sub.add_parser("devices", help="list the boards that answer HELLO (USB serial ports, MQTT brokers)")
    dv.add_argument("urls", nargs="*", metavar="URL",
                    help="boards to ask as well: serial://PATH (as pnn sim-board prints) or mqtt://HOST:PORT")
    dv.add_argument("--serial", action="append", default=[], metavar="PATH",
                    help="also ask this port, a path or serial://PATH (ports without a USB id, e.g. a pty, are "
                    "not scanned); repeatable")
    dv.add_argument("--mqtt", action="append", default=[], metavar="HOST:PORT",
                    help="ask this broker for the boards that report to it; repeatable")
    dv.add_argument("--no-scan", action="store_true", help="do not scan USB serial ports")
    dv.add_argument("--prefix", default="pnn", help="MQTT topic prefix (default: pnn)")
    dv.add_argument("--wait", type=float, default=0.5, help="seconds to collect MQTT status messages")
    dv.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    dv.set_defaults(handler=cmd_devices)

    ca = sub.add_parser("calibrate", help="measure a board's DAC -> ADC loopback: gain, offset, noise, usable range",
                        description="Ramp the DAC up and down, read the ADC at each level, fit; saves "
                        "<device-id>.json and .png under $PNN_CONFIG_DIR/calibration (~/.config/pnn).")
    ca.add_argument("url", help="the board: serial:///dev/ttyUSB0, mqtt://host:1883/<device-id>, sim://electronic")
    ca.add_argument("--out", help="folder for the JSON and the plot (default: ~/.config/pnn/calibration)")
    ca.add_argument("--levels", type=int, default=256, help="DAC codes on the ramp (default 256)")
    ca.add_argument("--sweeps", type=int, default=4, help="ramps, alternately up and down (default 4)")
    ca.add_argument("--hold-ms", type=float, default=10.0, help="how long each level is held (default 10 ms)")
    ca.add_argument("--reads", type=int, default=0, help="settled reads at the end of each hold (default: half)")
    ca.set_defaults(handler=cmd_calibrate)
    global _HAS_RESUME
    _HAS_RESUME = any("--resume" in a.option_strings for a in tr._actions)
    _PARSER_OPTIONS[:] = [a.option_strings for p in sub.choices.values() for a in p._actions]
    return parser


class _Stderr(logging.StreamHandler):
    """A handler on whatever sys.stderr is when a record comes (tests swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass  # StreamHandler.__init__ assigns a stream; this handler always writes to the current sys.stderr


_LOG_HANDLER = _Stderr()
_LOG_HANDLER.setFormatter(logging.Formatter("pnn: %(levelname)s: %(name)s: %(message)s"))


def show_logs(verbose: bool) -> None:
    """Print the `pnn.*` loggers' records on stderr: warnings (a link that dropped, a reconnect), and with
    -v what the links do (connects, resends)."""
    logger = logging.getLogger("pnn")
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    if _LOG_HANDLER not in logger.handlers:
        logger.addHandler(_LOG_HANDLER)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    show_logs(args.verbose)
    from rich.console import Console

    # Long paths stay on one line (greppable); tables get 200 columns when stdout is not a terminal (a log).
    console = Console(soft_wrap=True, width=shutil.get_terminal_size((200, 24)).columns)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args, console)
    except (UserError, FileNotFoundError, ConnectionError) as e:  # what a person mends; a bug keeps its traceback
        print(f"pnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
