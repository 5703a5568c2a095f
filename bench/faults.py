"""Fault tolerance: how much damage the links take with no sample lost, corrupted or duplicated, at what cost.

Run: python bench/faults.py [--rows 480] [--host-frames 1000000] [--firmware-frames 10000] [--quick]
Prints tables and writes bench/results/faults.json.

Every scenario measures the same drives on a board of the same seed as a fault-free run and compares the
responses bit for bit (the firmware under real MicroPython, 256 KiB heap, paced at a real board's 20 kS/s;
a noisy board one request at a time, so a RUN run twice would shift its noise stream and show):
(a) pty cable (pnn.testing.faults.FaultyCable): byte corruption from 1e-4 to 1e-2 per byte, each with 1%
    dropped and 1% duplicated frames both ways; the firmware itself receives the damaged bytes.
(b) MQTT through mosquitto (FaultyTransport): corruption (a hit message fails its CRC: lost), 1% drops,
    duplicates, reordering and delays.
(c) a board power-cycled mid-run (SIGKILL + restart; a noise-free board, whose response depends on its
    drive alone), the broker restarted mid-run, the USB cable unplugged for 0.3 s mid-run.
(d) bench/fuzz.py: the host decoder with 1M mutated frames, the firmware with 10k malformed frames.
Columns: lost (rows a call failed to return), wrong (rows not bit-equal to the fault-free run), extra
(rows the board counted beyond those asked: double measurements), retries, the board's ERROR answers, the
frames each direction lost, and the time against the fault-free run. "Tolerated" means lost = wrong = extra
= 0 with the retry budget of the URL (30 re-sends of a request).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import fuzz  # noqa: E402  (bench/fuzz.py, beside this file)
from _fixtures import board_file  # noqa: E402  (the test suite's board-file helper)
from conftest import Broker  # noqa: E402  (the test suite's real-mosquitto helper)

from pnn.devices import Device, connect  # noqa: E402
from pnn.testing.faults import Faults, FaultyCable, faulty_device  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults.json"
LINK = "n_in=16&n_out=8&chunk=4&timeout=0.25&retries=30&heartbeat=0.5&reconnect=20"
NOISY = LINK + "&window=1&settle=8"
QUIET = LINK + "&window=3&settle=128"
CALL = 16  # rows per call, as a training step would ask for
RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def drives(rows: int) -> torch.Tensor:
    return torch.rand(rows, 16, generator=torch.Generator().manual_seed(0))


def measure(board: Device, drive: torch.Tensor, budget_s: float, during: Callable[[], None] | None = None) -> dict:
    """Measure `drive` in calls of CALL rows; `during` starts in a thread 30% of the way through, while the
    calls go on (so it lands on requests in flight)."""
    out = np.full((len(drive), board.n_out), np.nan, np.float32)
    lost, errors = 0, []
    start = time.perf_counter()
    thread = threading.Thread(target=during) if during else None
    for i in range(0, len(drive), CALL):
        if thread is not None and not thread.is_alive() and i >= 0.3 * len(drive) > i - CALL:
            thread.start()
        left = budget_s - (time.perf_counter() - start)
        try:
            if left <= 0:
                raise TimeoutError(f"over the {budget_s:g} s budget")
            out[i : i + CALL] = board.submit(drive[i : i + CALL]).result(timeout=left)[0].numpy()
        except Exception as e:  # noqa: BLE001 - a failed call is counted (lost rows), the reason kept
            lost += len(drive[i : i + CALL])
            errors.append(f"{type(e).__name__}: {e}"[:160])
    if thread is not None:
        thread.join()
    return {"seconds": time.perf_counter() - start, "response": out, "lost": lost, "errors": errors[:3],
            "stats": board.stats()}  # fmt: skip


def unreachable(drive: torch.Tensor, reason: Exception) -> dict:
    """The run of a board that could not even be connected (HELLO never got through): every row lost."""
    return {"seconds": float("nan"), "response": np.full((len(drive), 8), np.nan, np.float32), "lost": len(drive),
            "errors": [f"connect: {reason}"[:160]], "stats": {"samples": 0, "retries": 0, "errors": 0, "reconnects": 0}}  # fmt: skip


def score(name: str, clean: dict, run: dict, counts: dict | None = None) -> dict:
    """The row of the report: what was lost or changed against the clean run, and what it cost."""
    same = np.all(run["response"] == clean["response"], axis=1)
    stats = run["stats"]
    row = {"scenario": name, "rows": len(same), "lost": run["lost"],
           "wrong": int((~same).sum()) - run["lost"], "extra": stats["samples"] - (len(same) - run["lost"]),
           "retries": stats["retries"], "board_errors": stats["errors"], "reconnects": stats["reconnects"],
           "seconds": run["seconds"], "overhead": run["seconds"] / clean["seconds"], "errors": run["errors"]}  # fmt: skip
    if counts is not None:
        row["faults"] = counts
        row["frames_lost"] = {d: c["dropped"] + c["corrupted_frames"] for d, c in counts.items() if d.startswith("to_")}
    row["tolerated"] = row["lost"] == row["wrong"] == row["extra"] == 0
    return row


@contextmanager
def serial_board(seed: int, faults: Faults | None, board: str | None = None) -> Iterator[tuple[Any, FaultyCable]]:
    """A fresh firmware on a pty, behind a (faulty) cable: (its Firmware, the cable)."""
    fw, master = fuzz.serial_firmware(seed, board)
    cable = FaultyCable(master, faults or Faults())
    try:
        yield fw, cable
    finally:
        cable.close()
        fw.close()
        os.close(master)


def serial_run(seed: int, faults: Faults | None, drive: torch.Tensor, budget_s: float, link: str = NOISY,
               board: str | None = None, during: Callable[[Any, FaultyCable], None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    with serial_board(seed, faults, board) as (fw, cable):
        try:
            dev = connect(f"serial://{cable.path}?{link}")
        except ConnectionError as e:
            return unreachable(drive, e), cable.counts()
        with dev:
            run = measure(dev, drive, budget_s, (lambda: during(fw, cable)) if during else None)
        return run, cable.counts()


def mqtt_run(broker: Broker, name: str, seed: int, faults: Faults | None, drive: torch.Tensor, budget_s: float,
             link: str = NOISY, board: str | None = None, during: Callable[[], None] | None = None) -> tuple[dict, dict | None]:  # fmt: skip
    extra = ["--board", board] if board else []
    fw = fuzz.Firmware(["--mqtt", f"{broker.host}:{broker.port}", "--id", name, "--seed", str(seed), *extra], "online as")
    url = f"mqtt://{broker.host}:{broker.port}/{name}?{link}"
    try:
        dev = faulty_device(url, faults) if faults else connect(url)
    except ConnectionError as e:
        fw.close()
        return unreachable(drive, e), None
    try:
        with dev:
            run = measure(dev, drive, budget_s, during)
            counts = dev.aio.transport.counts() if faults else None
        return run, counts
    finally:
        fw.close()


def power_cycle(fw: Any, cable: FaultyCable) -> None:
    """A board losing power: its USB port vanishes (what it had taken in is gone) and it boots afresh."""
    cable.unplug(0.2)
    fw.restart()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=480, help="rows measured in each scenario")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds a scenario may take before giving up")
    ap.add_argument("--host-frames", type=int, default=1_000_000)
    ap.add_argument("--firmware-frames", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="120 rows, 20k + 1k fuzz frames (a smoke run)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.rows, args.host_frames, args.firmware_frames = 120, 20_000, 1_000
    torch.set_num_threads(1)
    drive, budget = drives(args.rows), args.budget
    folder = Path(tempfile.mkdtemp(prefix="pnn-faults-"))
    quiet = board_file(folder, adc_noise_lsb=0, paced=True)
    paced = board_file(folder, paced=True)
    report: dict[str, Any] = {"rows": args.rows, "rows_per_call": CALL, "link": NOISY,
                              "machine": platform.platform(), "python": platform.python_version()}  # fmt: skip

    print("(a) pty cable, byte corruption + 1% drops + 1% duplicates ...", file=sys.stderr)
    clean, _ = serial_run(5, None, drive, budget, board=paced)
    rows = [score("clean", clean, clean)]
    for rate in RATES:
        faults = Faults(corrupt=rate, drop=0.01, duplicate=0.01, seed=1)
        run, counts = serial_run(5, faults, drive, budget, board=paced)
        rows.append(score(f"corrupt {rate:g}", clean, run, counts) | {"corrupt": rate})
    report["serial"] = rows

    broker = Broker(folder)
    broker.start()
    try:
        print("(b) MQTT, corruption + 1% drops, duplicates, reordering, delays ...", file=sys.stderr)
        clean, _ = mqtt_run(broker, "clean", 6, None, drive, budget, board=paced)
        rows = [score("clean", clean, clean)]
        for rate in RATES:
            faults = Faults(corrupt=rate, drop=0.01, duplicate=0.01, reorder=0.01, delay=0.01, seed=2)
            run, counts = mqtt_run(broker, f"faulty-{rate:g}", 6, faults, drive, budget, board=paced)
            rows.append(score(f"corrupt {rate:g}", clean, run, counts) | {"corrupt": rate})
        report["mqtt"] = rows

        print("(c) a board power-cycled, the broker restarted, the cable unplugged, mid-run ...", file=sys.stderr)
        quiet_clean, _ = serial_run(7, None, drive, budget, QUIET, quiet)
        reset, _ = serial_run(7, None, drive, budget, QUIET, quiet, during=power_cycle)
        noisy_clean, _ = serial_run(8, None, drive, budget, NOISY, paced)
        unplug, _ = serial_run(8, None, drive, budget, NOISY, paced, during=lambda _fw, cable: cable.unplug(0.3))
        mqtt_clean, _ = mqtt_run(broker, "steady", 9, None, drive, budget, NOISY, paced)
        restart, _ = mqtt_run(broker, "restarted", 9, None, drive, budget, NOISY, paced, during=broker.restart)
        report["interruptions"] = [score("board power-cycled (pty)", quiet_clean, reset),
                                   score("cable unplugged 0.3 s (pty)", noisy_clean, unplug),
                                   score("broker restarted (MQTT)", mqtt_clean, restart)]  # fmt: skip
    finally:
        broker.stop()

    print("(d) fuzzing ...", file=sys.stderr)
    report["fuzz"] = fuzz.run(args.host_frames, args.firmware_frames)
    show(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out}")
    lost = sum(r["lost"] + r["wrong"] + r["extra"] for r in report["interruptions"])
    lost += sum(r["lost"] + r["wrong"] + r["extra"] for part in ("serial", "mqtt") for r in report[part][:4])
    if lost or report["fuzz"]["host"]["crashes"] or report["fuzz"]["firmware"]["crashes"]:
        sys.exit(1)  # 1e-3 and below (and every interruption) must lose nothing; fuzzing must crash nothing


def show(report: dict) -> None:
    console = Console(width=max(Console().width, 140))
    for part, title in (("serial", "(a) pty cable: corruption per byte + 1% drops + 1% duplicates, both ways"),
                        ("mqtt", "(b) MQTT: corruption + 1% drops, duplicates, reordering, delays"),
                        ("interruptions", "(c) interruptions mid-run")):  # fmt: skip
        table = Table(title=f"{title} ({report['rows']} rows, {report['rows_per_call']} per call)")
        for col in ("scenario", "tolerated", "lost", "wrong", "extra", "retries", "board ERRORs", "reconnects",
                    "frames lost to / from board", "seconds", "x clean"):  # fmt: skip
            table.add_column(col, justify="left" if col == "scenario" else "right")
        for r in report[part]:
            frames = r.get("frames_lost", {})
            table.add_row(r["scenario"], "yes" if r["tolerated"] else "NO", str(r["lost"]), str(r["wrong"]),
                          str(r["extra"]), str(r["retries"]), str(r["board_errors"]), str(r["reconnects"]),
                          f"{frames.get('to_board', '-')} / {frames.get('to_host', '-')}", f"{r['seconds']:.2f}",
                          f"{r['overhead']:.2f}")  # fmt: skip
        console.print(table)
    fuzz.print_table(report["fuzz"])


if __name__ == "__main__":
    main()
