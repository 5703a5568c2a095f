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


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)


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


class CountingFirmware:
    """tests/fw_counting.py (the firmware's serial loop) on a fresh pty: `fd` is the host side (raw);
    `runs()` ends it and returns how many RUNs it executed (not counting RESULT-cache replays)."""

    def __init__(self, folder: Path, board: str | None = None) -> None:
        import os
        import tty

        self.fd, slave = os.openpty()
        tty.setraw(self.fd)
        tty.setraw(slave)
        self.log = folder / "fw-counting.txt"
        with open(self.log, "wb") as f:
            args = [os.ttyname(slave), *([board] if board else [])]
            self.proc = subprocess.Popen(["micropython", "-X", "heapsize=256k", str(ROOT / "tests" / "fw_counting.py"),
                                          *args], stdout=f, stderr=f)  # fmt: skip
        os.close(slave)
        deadline = time.monotonic() + 15
        while "serving" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"fw_counting did not start: {self.log.read_text(errors='replace')}")
            time.sleep(0.02)

    def runs(self) -> int:
        import os

        from pnn_protocol import frame, messages
        from pnn_protocol.codec import packb

        os.write(self.fd, b"\x00" + frame(packb(messages.repl(1))))  # a clean line now: the counts, please
        self.proc.wait(15)
        counts = self.log.read_text(errors="replace").split("counts ")[-1]
        return int(counts.split('"runs": ')[1].split(",")[0].rstrip("}"))

    def close(self) -> None:
        import os

        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.fd)
