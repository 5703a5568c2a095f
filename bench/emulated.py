"""The pnn firmware on an emulated Pico (tests/_emu.py: MicroPython rp2 in rp2040js + the circuit plugin).

Run: nice python bench/emulated.py [--batch 8] [--n 32]
Prints a table and writes bench/results/emulated.json: flash time, HELLO time after a reset, RUN
throughput (wall) and the emulator's wall/emulated ratio, and the achieved sample rate and jitter of the
ADC0 conversions (the plugin's log of emulated start times) for each pacing the firmware has, and the
twin NRMSE and PAT accuracy of the tests' short `pnn train`.
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

from pnn.boards.knock import wait_for_firmware  # noqa: E402
from pnn.cli import main as pnn_main  # noqa: E402
from pnn.devices import connect  # noqa: E402
from pnn.link.sync import open_serial  # noqa: E402
from pnn_protocol import frame, messages, packb  # noqa: E402

RATES = (10_000, 20_000)  # the ticks_us path's range on this board file (max_rate 20000)


def pacing(emu: _emu.Emu, since: int, rate: int) -> dict:
    """Achieved rate and jitter of the ADC0 conversions logged after index `since` (within examples)."""
    t = np.array(emu.conversions()[since:], dtype=np.int64)
    d = np.diff(t) / 1e3  # us
    tick = 1e6 / rate
    d = d[d < 1.5 * tick]  # gaps between examples/requests are not ticks
    return {"rate": rate, "ticks": int(len(d)), "achieved_sps": float(1e6 / d.mean()),
            "jitter_us_rms": float(d.std()), "jitter_us_max": float(np.abs(d - tick).max())}  # fmt: skip


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
            since = emu.log.stat().st_size
            link = open_serial(emu.tty)  # the protocol's hard RESET: machine.reset() after its ack
            link.write_raw(b"\x00" + frame(packb(messages.reset(5, hard=True))))
            link.close()
            t0 = time.monotonic()
            emu.wait_ready(since)
            k = wait_for_firmware(emu.tty, 600)
            rows["hello_after_reset_s"] = time.monotonic() - t0 if k.kind == "pnn" else None
            for rate in RATES:
                url = f"serial://{emu.tty}?n_in={a.n}&n_out={a.n}&rate={rate}&settle=8&timeout=120&reconnect=600&heartbeat=0"
                with connect(url) as dev:
                    drive = torch.rand(a.batch, a.n)
                    dev(drive[:1])  # connect and warm up
                    since = len(emu.conversions())
                    e0, t0 = emu.ctl("time")["sim_ns"], time.monotonic()
                    dev(drive)
                    wall, sim = time.monotonic() - t0, (emu.ctl("time")["sim_ns"] - e0) / 1e9
                rows[f"ticks_us_{rate}"] = pacing(emu, since, rate) | {
                    "run_wall_s": wall, "run_emulated_s": sim, "wall_per_emulated": wall / sim,
                    "samples_per_wall_s": a.batch * a.n / wall}  # fmt: skip
            rows |= short_training(emu, Path(tmp))
        finally:
            emu.stop()
    rows["dma"] = "not implemented: the firmware paces with ticks_us only (see firmware/README.md)"
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
    for rate in RATES:
        r = rows[f"ticks_us_{rate}"]
        t.add_row(f"ticks_us {rate} S/s: achieved rate (S/s)", f"{r['achieved_sps']:.1f}")
        t.add_row(f"ticks_us {rate} S/s: jitter RMS / max (us)", f"{r['jitter_us_rms']:.2f} / {r['jitter_us_max']:.1f}")
        t.add_row(f"ticks_us {rate} S/s: RUN samples per wall s", f"{r['samples_per_wall_s']:.0f}")
        t.add_row(f"ticks_us {rate} S/s: wall / emulated time", f"{r['wall_per_emulated']:.1f}")
    t.add_row("dma", str(rows["dma"]))
    for key, label, f in (("twin_nrmse", "twin NRMSE (300 drives, vowels layer)", "{:.3f}"),
                          ("pat_accuracy", "PAT test accuracy (vowels, 1 layer, 4 epochs; chance 0.143)", "{:.3f}"),
                          ("train_wall_s", "pnn train (s, wall: collect, fit, PAT)", "{:.0f}")):  # fmt: skip
        v = rows.get(key)
        t.add_row(label, f.format(v) if isinstance(v, float) else str(v))
    Console().print(t)


if __name__ == "__main__":
    main()
