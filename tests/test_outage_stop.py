"""The outage policy end to end: a board gone longer than `patience` mid-`pnn train` stops the run cleanly
(exit 2, one line naming the board and saying how to continue), and `pnn train --resume` finishes it once
the board is back, with each epoch's metric row exactly once.

The board is the firmware under real MicroPython on a pty behind a cable (the host's path stays, as a
board that browns out behind its USB hub); the run is a real `pnn train` subprocess.
"""

from __future__ import annotations

import time
from pathlib import Path

from _fixtures import kill, restart
from test_resume import pnn_train, rows

EXPERIMENT = """
[experiment]
name = "outage-stop"
[task]
name = "digits"
[system]
url = "serial://{path}?n_in=64&n_out=16&heartbeat=0.5"
patience = {patience}
[twin]
samples = 128
epochs = 5
hidden = [32]
[train]
trainers = ["pat"]
depth = 2
epochs = 2
batch_size = 128
"""


def test_an_outage_beyond_patience_stops_the_run_and_resume_finishes_it(firmware_serial, tmp_path: Path) -> None:
    sim = firmware_serial(seed=5, cable=True)
    toml = tmp_path / "exp.toml"
    toml.write_text(EXPERIMENT.format(path=sim.host_path, patience=3))
    run = tmp_path / "run"
    proc = pnn_train(str(toml), "--out", str(run))
    started = time.monotonic()
    while not rows(run):  # the first epoch is checkpointed: now the board goes for good
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    first_epoch = time.monotonic() - started
    kill(sim)
    out, _ = proc.communicate(timeout=max(300.0, 10 * first_epoch))  # patience is 3 s: it stops soon
    assert proc.returncode == 2, out
    stop = [line for line in out.splitlines() if "pnn train: error:" in line]
    assert len(stop) == 1 and "unreachable since" in stop[0] and "patience 3 s" in stop[0], out
    assert f"pnn train --resume {run}" in stop[0], stop
    assert "Traceback" not in out and "never retrieved" not in out, out
    assert [(r["trainer"], r["epoch"]) for r in rows(run)] == [("pat", 1)]
    assert (run / "checkpoints" / "pat.seed0.pt").exists()

    restart(sim, "--serial", sim.path, "--seed", "5", ready="serving")  # the board is back
    resumed = pnn_train("--resume", str(run))
    out, _ = resumed.communicate(timeout=max(300.0, 10 * first_epoch))
    assert resumed.returncode == 0, out
    assert [(r["trainer"], r["epoch"]) for r in rows(run)] == [("pat", 1), ("pat", 2)]
    assert (run / "summary.json").exists()
