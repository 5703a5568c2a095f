"""The pnn firmware on an emulated Pico (tests/_emu.py: MicroPython rp2 in rp2040js + the circuit plugin).

Run: nice python bench/emulated.py [--batch 8] [--n 32]
Prints a table and writes bench/results/emulated.json: flash time, HELLO time after a reset (and whether
the boot id changed), RUN throughput (wall) and the emulator's wall/emulated ratio, and the achieved
sample rate and jitter of the ADC0 conversions (the plugin's log of emulated start times) at 10, 100 and
500 kS/s for each pacing the firmware has: the DMA (board rp2040) and the ticks_us loop (a copy of the
board file with "pacing": "ticks_us" and max_rate 500000, so that loop is asked for rates it cannot
reach), and the twin NRMSE and PAT accuracy of the tests' short `pnn train`.
Needs ../shared/rp2040-emu and Node.js. Rows that are not measured say why.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import _emu  # noqa: E402  (the tests' emulator helper)

from pnn.boards.knock import knock, wait_for_firmware  # noqa: E402
from pnn.cli import main as pnn_main  # noqa: E402
from pnn.devices import connect  # noqa: E402
from pnn.link.sync import open_serial  # noqa: E402
from pnn_protocol import frame, messages, packb  # noqa: E402

RATES = {"dma": (10_000, 100_000, 500_000), "ticks_us": (10_000, 18_000, 19_000, 100_000, 500_000)}


def pacing(emu: _emu.Emu, since: int, rate: int) -> dict:
    """Achieved rate and jitter of the ADC0 conversions logged after index `since` (within examples)."""
    t = np.array(emu.conversions()[since:], dtype=np.int64)
    d = np.diff(t) / 1e3  # us
    d = d[d < 1.5 * np.median(d)]  # gaps between examples/requests are not ticks
    return {"rate": rate, "ticks": int(len(d)), "achieved_sps": float(1e6 / d.mean()),
            "jitter_us_rms": float(d.std()), "jitter_us_max": float(np.abs(d - np.median(d)).max())}  # fmt: skip


def measure(emu: _emu.Emu, a: argparse.Namespace, pacer: str, rows: dict) -> None:
    """One RUN per rate through pnn.connect: its ADC0 instants, wall and emulated time, overruns."""
    for rate in RATES[pacer]:
        url = f"serial://{emu.tty}?n_in={a.n}&n_out={a.n}&rate={rate}&settle=8&timeout=120&reconnect=600&heartbeat=0"
        with connect(url) as dev:
            drive = torch.rand(a.batch, a.n)
            dev(drive[:1])  # connect and warm up
            since = len(emu.conversions())
            e0, t0 = emu.ctl("time")["sim_ns"], time.monotonic()
            dev(drive)
            wall, sim = time.monotonic() - t0, (emu.ctl("time")["sim_ns"] - e0) / 1e9
        rows[f"{pacer}_{rate}"] = pacing(emu, since, rate) | {
            "run_wall_s": wall, "run_emulated_s": sim, "wall_per_emulated": wall / sim,
            "samples_per_wall_s": a.batch * a.n / wall}  # fmt: skip


def reflash_ticks_us(emu: _emu.Emu, folder: Path) -> None:
    """Flash a copy of rp2040.json that paces with ticks_us only, with max_rate 500000 (to measure it)."""
    board = json.loads((ROOT / "firmware" / "boards" / "rp2040.json").read_text())
    board |= {"pacing": "ticks_us", "max_rate": 500_000}
    path = folder / "rp2040_ticks_us.json"
    path.write_text(json.dumps(board))
    if pnn_main(["flash", emu.tty, "--board", str(path)]) != 0:
        raise SystemExit("pnn flash (ticks_us board) failed")


def short_training(emu: _emu.Emu, folder: Path) -> dict[str, object]:
    """The tests' short `pnn train` (tests/_emu.py experiment_toml): twin NRMSE, PAT accuracy, wall time."""
    toml = folder / "emulated.toml"
    toml.write_text(_emu.experiment_toml(emu.tty))
    t0 = time.monotonic()
    if pnn_main(["train", str(toml), "--out", str(folder / "train")]) != 0:
        return {"twin_nrmse": "pnn train failed", "pat_accuracy": "pnn train failed"}
    summary = json.loads((folder / "train" / "summary.json").read_text())
    return {"twin_nrmse": summary["twin_nrmse"], "pat_accuracy": summary["accuracy"]["pat"],
            "train_wall_s": time.monotonic() - t0}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n", type=int, default=32, help="drive samples per example")
    a = ap.parse_args()
    rows: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        emu = _emu.boot(Path(tmp))
        try:
            t0 = time.monotonic()
            if pnn_main(["flash", emu.tty, "--board", "rp2040"]) != 0:
                raise SystemExit("pnn flash failed")
            rows["flash_s"] = time.monotonic() - t0
            boot0 = knock(emu.tty, timeout=60).reply.get("boot")
            since = emu.log.stat().st_size
            link = open_serial(emu.tty)  # the protocol's hard RESET: machine.reset() after its ack
            link.write_raw(b"\x00" + frame(packb(messages.reset(5, hard=True))))
            link.close()
            t0 = time.monotonic()
            emu.wait_ready(since)
            k = wait_for_firmware(emu.tty, 600)
            rows["hello_after_reset_s"] = time.monotonic() - t0 if k.kind == "pnn" else None
            rows["boot_id_changed"] = k.kind == "pnn" and k.reply.get("boot") != boot0
            rows["max_rate_dma"] = k.reply["caps"]["max_rate"] if k.kind == "pnn" else None
            measure(emu, a, "dma", rows)
            rows |= short_training(emu, Path(tmp))
            reflash_ticks_us(emu, Path(tmp))
            measure(emu, a, "ticks_us", rows)
        finally:
            emu.stop()
    show(rows)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "emulated.json").write_text(json.dumps(rows, indent=2))


def show(rows: dict) -> None:
    t = Table(title="pnn firmware on an emulated Pico (rp2040js, MicroPython v1.26.1)")
    t.add_column("what")
    t.add_column("value", justify="right")
    fmt = {"flash_s": "pnn flash (s, wall)", "hello_after_reset_s": "HELLO after reset (s, wall)"}
    for key, label in fmt.items():
        v = rows.get(key)
        t.add_row(label, "failed" if v is None else f"{v:.1f}")
    t.add_row("boot id new after the reset", str(rows.get("boot_id_changed")))
    t.add_row("HELLO max_rate with DMA (S/s)", str(rows.get("max_rate_dma")))
    for pacer, rates in RATES.items():
        for rate in rates:
            r = rows[f"{pacer}_{rate}"]
            t.add_row(f"{pacer} {rate} S/s: achieved rate (S/s)", f"{r['achieved_sps']:.1f}")
            t.add_row(f"{pacer} {rate} S/s: jitter RMS / max (us)", f"{r['jitter_us_rms']:.3f} / {r['jitter_us_max']:.3f}")
            t.add_row(f"{pacer} {rate} S/s: RUN samples per wall s", f"{r['samples_per_wall_s']:.0f}")
            t.add_row(f"{pacer} {rate} S/s: wall / emulated time", f"{r['wall_per_emulated']:.1f}")
    for key, label, f in (("twin_nrmse", "twin NRMSE (300 drives, vowels layer)", "{:.3f}"),
                          ("pat_accuracy", "PAT test accuracy (vowels, 1 layer, 4 epochs; chance 0.143)", "{:.3f}"),
                          ("train_wall_s", "pnn train (s, wall: collect, fit, PAT)", "{:.0f}")):  # fmt: skip
        v = rows.get(key)
        t.add_row(label, f.format(v) if isinstance(v, float) else str(v))
    Console().print(t)


if __name__ == "__main__":
    main()
