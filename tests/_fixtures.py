"""What the host-runtime tests need beyond tests/conftest.py: killing a board and starting it again.

conftest's `firmware_serial` / `firmware_mqtt` start the firmware once; a test of recovery needs the
same board back (same pty path or MQTT id, same seed) after a SIGKILL. `restart` does that and puts
the new process into the fixture's record, so the fixture's teardown still kills it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "firmware" / "sim" / "run.py"
SIM_BOARD = ROOT / "firmware" / "boards" / "sim.json"
# A small experiment (a 300-sample twin, 2 epochs) for the CLI and run-folder tests.
TINY = """
[experiment]
name = "tiny"
[system]
kind = "electronic"
n_in = 64
n_out = 16
[twin]
samples = 300
epochs = 5
hidden = [32]
[train]
trainers = ["in-silico", "pat"]
depth = 2
epochs = 2
"""


def board_file(folder: Path, **overrides: object) -> str:
    """A copy of firmware/boards/sim.json with some keys changed (e.g. paced=True), as a path."""
    board = json.loads(SIM_BOARD.read_text())
    board.update(overrides)
    path = folder / f"sim-{abs(hash(tuple(sorted(overrides.items())))):x}.json"
    path.write_text(json.dumps(board))
    return str(path)


def kill(sim) -> None:
    """SIGKILL the board's process (no goodbye: like pulling its power)."""
    if sim.proc.poll() is None:
        sim.proc.kill()
    sim.proc.wait(5)


def restart(sim, *args: str, ready: str, timeout: float = 15.0) -> None:
    """Start `micropython run.py ARGS` again for the conftest record `sim`; wait for `ready` in stderr."""
    kill(sim)
    offset = sim.log.stat().st_size
    with open(sim.log, "ab") as log:
        sim.proc = subprocess.Popen(["micropython", "-X", "heapsize=256k", str(RUN_PY), *args],
                                    stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + timeout
    while ready not in sim.log.read_text(errors="replace")[offset:]:
        if sim.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"firmware did not restart: {sim.log.read_text(errors='replace')[offset:]}")
        time.sleep(0.02)
