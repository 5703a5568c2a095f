"""A pty relay: the USB cable between the pty a board (or the firmware under MicroPython) serves on and
a new host-side port path, carried by one thread.

The board keeps its own pty; the host opens `path` (a symlink to a fresh pty) instead. `unplug(seconds)`
removes the host side: the host's port fails, `path` disappears, and a new pty appears at the same path
after `seconds`, as a USB replug does. `pnn sim-board` uses it plainly; `pnn.testing.faults.FaultyCable`
subclasses it and damages the bytes on their way (the hooks `_carry_in`, `_carry_out`, `_wakeups`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Self

_TO = {"board": "host", "host": "board"}  # bytes read from one side go to the other


class PtyRelay:
    """Relays bytes both ways between `board_fd` and a host-side pty at `path`. Use as a context manager.

    Args:
        board_fd: the master side of the board's pty (the caller keeps owning it).
        folder: where to put the `path` symlink (a temporary folder if None).
        name: the relay thread's name.
    """

    def __init__(self, board_fd: int, folder: str | os.PathLike[str] | None = None, name: str = "pty-relay") -> None:
        self._board = board_fd
        self._folder = Path(folder or tempfile.mkdtemp(prefix="pnn-cable-"))
        self.path = str(self._folder / "ttyPNN")
        self.unplugs = 0
        self._host = self._host_slave = -1
        self._out = {"board": bytearray(), "host": bytearray()}  # bytes waiting to be written to each side
        self._plug()
        self._replug_at: float | None = None
        self._ctl_r, self._ctl_w = os.pipe()
        self._commands: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def unplug(self, seconds: float) -> None:
        """Pull the host side out for `seconds`, then plug it in again."""
        self._command("unplug", seconds)

    def close(self) -> None:
        """Stop relaying and remove the host side (the board's pty stays the caller's)."""
        if self._thread.is_alive():
            self._command("stop", 0.0)
            self._thread.join(5)
        self._unplug()
        for fd in (self._ctl_r, self._ctl_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._error is not None:
            raise RuntimeError(f"the pty relay failed: {self._error!r}") from self._error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks for a relay that does something to the bytes (FaultyCable) -------------------------
    def _carry_in(self, side: str, data: bytes, now: float) -> None:
        """Bytes just read from `side` ("board" or "host"): passed on as they are."""
        self._out[_TO[side]] += data

    def _carry_out(self, now: float) -> None:
        """Called every round before writing: move whatever is due into `_out`."""

    def _wakeups(self) -> list[float | None]:
        """Monotonic times at which `_carry_out` has something due."""
        return []

    def _on_unplug(self) -> None:
        """The host side was just removed: drop what was on its way."""

    # -- relay thread ----------------------------------------------------------------------------
    def _command(self, name: str, arg: float) -> None:
        with self._lock:
            self._commands.append((name, arg))
        os.write(self._ctl_w, b"x")

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        # The relay holds the slave open too, so its reads never fail while the host has it closed.
        self._host, self._host_slave = master, slave
        tmp = f"{self.path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)  # atomic: the host never sees a half-made path

    def _unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in (self._host, self._host_slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._host = self._host_slave = -1
        self._out["host"].clear()
        self._on_unplug()

    def _pull(self, seconds: float) -> None:
        self.unplugs += 1
        self._unplug()
        self._replug_at = time.monotonic() + seconds

    def _run(self) -> None:
        try:
            os.set_blocking(self._board, False)
            while self._step():
                pass
        except BaseException as e:  # noqa: BLE001 - kept and raised by close(), in the caller's thread
            self._error = e

    def _step(self) -> bool:
        """One select round: read, carry, write. False when told to stop."""
        now = time.monotonic()
        if self._replug_at is not None and now >= self._replug_at:
            self._replug_at = None
            self._plug()
        self._carry_out(now)
        waits = [t for t in (*self._wakeups(), self._replug_at) if t is not None]
        timeout = max(0.0, min(waits) - now) if waits else None
        readers = [self._ctl_r, self._board] + ([self._host] if self._host >= 0 else [])
        writers = [
            fd for fd, key in ((self._board, "board"), (self._host, "host")) if fd >= 0 and self._out[key]
        ]
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if self._ctl_r in readable:
            os.read(self._ctl_r, 64)
            with self._lock:
                commands, self._commands = self._commands, []
            for name, arg in commands:
                if name == "stop":
                    return False
                self._pull(arg)
        for fd in readable:
            if fd == self._board:
                self._take(fd, "board")
            elif fd == self._host:
                self._take(fd, "host")
        for fd in writable:
            key = "board" if fd == self._board else "host"
            if fd in (self._host, self._board):  # (the host side may have been unplugged just now)
                with contextlib.suppress(BlockingIOError):
                    del self._out[key][: os.write(fd, self._out[key])]
        return True

    def _take(self, fd: int, side: str) -> None:
        """Read what `fd` has and carry it on."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the far side is closed right now; nothing to carry
                raise
            time.sleep(0.01)
            return
        if side == "board" and self._host < 0:
            return  # unplugged: what the board says goes nowhere
        self._carry_in(side, data, time.monotonic())
