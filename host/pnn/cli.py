"""The `pnn` command. Every failure a user can cause ends in one line saying what to do, and exit code 2.

Heavy libraries (torch, matplotlib, the device clients) load inside the commands that need them, so
`pnn --help` and `pnn --version` answer at once.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from rich.console import Console

from .link.errors import NotPnnFirmware, UserError


class UsageError(UserError):
    """A mistake the user can mend; printed as one line."""


DEMO_SEEDS = 3  # the demo's table is a mean +- std over this many training seeds


def demo_config(system: str, quick: bool, seed: int, data: str | None = None, seeds: int | None = None) -> dict:
    """The `pnn demo` experiment: a simulated board, 3 physical layers, realistic noise and drift.

    The twin is the paper's kind (an MLP) fit on 2,000 measurements, half at uniform drives and half
    where training drives the board (`[twin] drives = "mixed"`, pnn.twin_data: its gradient agrees
    better with the exact one there): good enough for PAT, not good enough for in-silico training,
    which is the point the demo makes. Every value, the flags' too,
    is checked before anything is measured.
    """
    from . import config

    raw: dict = {
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
        raw["system"].update(n_in=24, n_out=12)
        raw["train"].update(encoder="concat", batch_size=16, epochs=40, depth=1)
    if quick:
        raw["train"]["epochs"] = max(2, raw["train"]["epochs"] // 5)
        raw["twin"].update(samples=500, epochs=30)
    flags = {"task.data": config.Flag("--data", data), "train.seeds": config.Flag("--seeds", seeds)}
    return config.parse(raw, flags).as_dict()


def new_run_dir(root: str, name: str) -> Path:
    path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{n}"
    return path


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from . import physics  # the one list of kinds; read here, not at parse time, so --help needs no torch

    if args.system not in physics.KINDS:
        choices = ", ".join(repr(k) for k in physics.KINDS)
        args.parser.error(f"argument --system: invalid choice: {args.system!r} (choose from {choices})")
    cfg = demo_config(args.system, args.quick, args.seed, args.data, args.seeds)
    from . import experiment

    run_dir = new_run_dir(args.runs, cfg["experiment"]["name"])
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


def _fresh_out(path: Path, resume: bool) -> None:
    """--out onto a folder that already holds a run would mix two runs' rows: refuse unless resuming."""
    if resume or not path.exists():
        return
    # config.json and a twin alone are fine: pnn collect / fit-twin prepare a folder for pnn train to use
    held = [n for n in ("metrics.jsonl", "summary.json", "predictions.json") if (path / n).exists()]
    if held:
        raise UsageError(f"--out {path}: that folder already holds a run ({', '.join(held)}); give a new --out "
                         "folder, or --resume to continue it")  # fmt: skip



def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from . import experiment

    if args.resume:
        console.print(f"[bold]pnn train[/] resuming {args.resume}")
        experiment.run(experiment.load_run(args.resume), Path(args.resume), console=console, resume=True)
        return 0
    if args.experiment is None:
        raise UsageError("pnn train needs an experiment file (e.g. examples/electronic-digits.toml) or --resume RUN_FOLDER")
    from . import config

    cfg = config.load(args.experiment, _train_flags(args)).as_dict()  # every value checked before measuring
    run_dir = Path(args.out) if args.out else new_run_dir(args.runs, cfg["experiment"]["name"])
    _fresh_out(run_dir, False)
    console.print(f"[bold]pnn train[/] {args.experiment} -> {run_dir}")
    experiment.run(cfg, run_dir, console=console)
    return 0


def _experiment_dir(args: argparse.Namespace, overrides: dict | None = None) -> tuple[dict, Path]:
    from . import config

    cfg = config.load(args.experiment, overrides).as_dict()
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    return cfg, run_dir


def cmd_collect(args: argparse.Namespace, console: Console) -> int:
    from .config import Flag

    cfg, run_dir = _experiment_dir(args, {"twin.samples": Flag("--samples", args.samples)})
    from . import experiment

    system = experiment.make_system(cfg["system"])
    store = experiment.collect_data(cfg, system, run_dir)
    console.print(f"{run_dir / 'twin-data'}: {store.verify()} samples in {store.n_chunks} verified chunks")
    return 0


def cmd_fit_twin(args: argparse.Namespace, console: Console) -> int:
    cfg, run_dir = _experiment_dir(args)
    from . import experiment

    twin = experiment.fit_from_store(cfg, run_dir)
    console.print(f"{run_dir / 'twin.pt'}: held-out NRMSE {twin.nrmse:.3f} on {twin.metadata['n_test']} samples")
    return 0


def cmd_eval(args: argparse.Namespace, console: Console) -> int:
    from . import experiment

    acc = experiment.evaluate(Path(args.run), args.trainer)
    console.print(f"{args.run}: {args.trainer} test accuracy on the system now: {100 * acc:.1f}%")
    return 0


def cmd_sim_board(args: argparse.Namespace, console: Console) -> int:
    from .boards.simboard import SimBoard, SimBoardError

    try:
        board = SimBoard(args.seed, args.mqtt, args.id)
    except SimBoardError as e:
        raise UsageError(str(e)) from e
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # `kill` stops it as cleanly as Ctrl-C: the firmware process goes too

    signal.signal(signal.SIGTERM, stop)
    with board:
        console.print(f"simulated board (seed {args.seed}) running the pnn firmware under MicroPython: {board.url}")
        console.print(f'use it: url = "{board.url}" in an experiment\'s \\[system], or pnn calibrate {board.url}')
        console.print("Ctrl-C stops it.")
        try:
            while True:
                time.sleep(0.5)
                if board.proc.poll() is not None:  # it died (or was killed): boot it again at the same URL
                    console.print(f"the firmware exited ({board.proc.returncode}); restarting it at {board.url}")
                    try:
                        board.respawn()
                    except SimBoardError as e:
                        raise UsageError(f"{e}; see {board.folder}/firmware.log") from None
        except KeyboardInterrupt:
            return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .report import regenerate

    for path in regenerate(Path(args.run), complete=True):  # an incomplete run: one line naming what is missing
        console.print(f"wrote {path}")
    return 0


# -- boards: flash, devices, calibrate -----------------------------------------------------------


def cmd_flash(args: argparse.Namespace, console: Console) -> int:
    from .boards import flash

    try:
        return _flash(args, console)
    except flash.NoAnswer:
        raise
    except OSError as e:  # pyserial's SerialException too: the board was unplugged or reset mid-way
        raise UsageError(f"{args.port} went away while flashing ({e}): plug the board back in, check it with "
                         f"`pnn devices`, and run `pnn flash {args.port} --board {args.board}` again") from None


def _flash(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .boards import flash

    board_path = flash.board_file(args.board)
    board = flash.read_board(board_path)
    files = flash.plan(board_path, Path(args.secrets) if args.secrets else None)
    port = args.port
    if args.dry_run:
        console.print(f"pnn flash --dry-run: {len(files)} files for {port} (board file {board_path}); nothing is touched")
        for c in files:
            console.print(f"  {c}", highlight=False)
        steps = ["send the REPL request if the board runs pnn firmware", f"check that the board fits {board_path.name}",
                 "mkdir " + " ".join(":" + d for d in flash.folders(files)), "copy the files above with mpremote",
                 "leave the board at the REPL" if args.no_reset else "reset it and wait for HELLO"]  # fmt: skip
        console.print("steps: " + "; ".join(steps), highlight=False)
        return 0
    with console.status(f"asking {port} what it runs"):
        found = flash.knock(port)
    if found.kind in ("pnn", "version"):
        console.print(f"{port}: {found.describe()}; asking it to leave the binary protocol for the REPL")
        if not flash.leave_protocol(port):
            raise flash.FlashError(f"{port} runs pnn firmware but did not return to the REPL: hold the board's "
                                   "boot_skip pin low while resetting it (firmware/README.md), then flash again")
    elif found.kind == "silent":
        raise NotPnnFirmware(f"nothing answers on {port}, neither pnn firmware nor a MicroPython REPL: is MicroPython "
                             "on the board (hardware/first-run.md, step 2) and is this its port (`pnn devices`)?")
    elif found.kind == "garbage":
        raise NotPnnFirmware(f"{port} sends bytes that are neither pnn frames nor a MicroPython REPL: is it the "
                             "board's port, and is MicroPython on it (hardware/first-run.md, step 2)?")
    with console.status(f"asking MicroPython on {port} which board it is"):
        platform, machine, answer_s = flash.identify(port)
    flash.check_board(board, platform, machine)
    console.print(f"{port}: {machine} fits {board_path.name}")
    columns = (TextColumn("copying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("", total=len(files))
        done = [0]

        def started(dst: str) -> None:
            progress.update(task, completed=done[0], description=dst)
            done[0] += 1

        compile_s = flash.copy(port, files, started)
        progress.update(task, completed=len(files), description="done")
    if args.no_reset:
        console.print(f"copied {len(files)} files; the board stays at the REPL (reset it to start the firmware)")
        return 0
    with console.status("restarting the board and waiting for the firmware to answer HELLO"):
        flash.restart(port, platform)
        running = flash.wait_for_firmware(port, flash.boot_allowance(files, compile_s, answer_s))
    if running.kind == "pnn":
        console.print(f"{port}: {running.describe()} answers HELLO. Next: pnn devices --serial {port}; "
                      f"pnn calibrate serial://{port}")  # fmt: skip
        return 0
    if running.kind == "repl":
        why = flash.startup_error(port)
        raise flash.FlashError(f"the firmware did not start on {port}" + (f" ({why})" if why else "") +
                               f"; see the board's output with `mpremote connect {port} repl`")  # fmt: skip
    raise flash.NoAnswer(f"copied, but {port} does not answer HELLO after the reset ({running.describe()}): "
                         f"reset the board by hand, then check it with `pnn devices --serial {port}`")


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
    from .boards.discover import list_devices, table

    serial, mqtt = _device_args(args.urls, args.serial, args.mqtt)
    brokers = [_broker_url(b) for b in mqtt]
    with console.status("asking every port and broker for HELLO"):
        rows = list_devices(serial, brokers, scan_usb=not args.no_scan, prefix=args.prefix, wait=args.wait)
    rows = [diagnose.probe_slow_board(r) for r in rows]
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
        pass


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

    # Long paths stay on one line (greppable); tables get 120 columns when stdout is not a terminal.
    console = Console(soft_wrap=True, width=shutil.get_terminal_size((120, 24)).columns)
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
