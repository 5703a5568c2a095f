# ruff: noqa: F811 - the cli and repl_board fixtures come from test_flash
"""`pnn devices` and `pnn calibrate` meeting boards, good and bad, each a real part:

- the pnn firmware under real MicroPython on a pty, and over MQTT through a real mosquitto;
- a wrong port (no such path), and a pty whose peer never answers;
- an unflashed board: MicroPython's unix port at its bare REPL on a pty (see test_flash.py);
- pnn firmware of another protocol version: a peer process built on pnn_protocol that answers HELLO
  with protocol 2, or refuses our version 1 with a BAD_VERSION ERROR;
- an unreachable broker (a closed port) and a live broker without the board;
- a URL of an unknown scheme.
Each failure: exit status 2 and one line on stderr that names the problem and the fix.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tty
from collections.abc import Iterator

import pytest
from conftest import free_port
from test_flash import ReplBoard, cli, one_line, repl_board  # noqa: F401 - fixtures, used by name

from pnn.boards.discover import probe_params
from pnn.link.client import make_device
from pnn.link.url import parse_url

FAST = "reconnect=0.5"  # these peers answer in milliseconds or never; no need to wait 2 s for them

PEER = r"""
import os, sys
from pnn_protocol import FrameDecoder, errors, frame, messages, packb, unpackb
fd, mode = int(sys.argv[1]), sys.argv[2]
caps = {"dac_bits": 8, "adc_bits": 12, "max_drive": 512, "max_batch": 8, "max_out": 512, "max_codes": 4000,
        "min_rate": 100, "max_rate": 20000, "max_oversample": 16, "max_settle": 1000, "max_frame": 9216}
decoder = FrameDecoder(9216)
while True:
    for ev in decoder.feed(os.read(fd, 4096)):
        if isinstance(ev, int):
            continue
        rid = unpackb(bytes(ev)).get("id")
        if mode == "proto2":  # a newer firmware: same envelope, HELLO says it speaks protocol 2
            reply = messages.hello(rid, "esp32-9", "9.0.0", "esp32", caps)
            reply["proto"] = 2
        else:  # a firmware that refuses version-1 requests, answering in the v1 ERROR format (SPEC)
            reply = messages.error(rid, errors.BAD_VERSION, "protocol version 1 not supported (this side speaks 2)")
        os.write(fd, frame(packb(reply)))
"""


@pytest.fixture
def pty_peer() -> Iterator:
    """Factory: start(mode) -> the port path of a pty whose other side is a PEER process in `mode`,
    or silent (mode None: the master is held open and never read or written)."""
    opened: list[tuple[int, int, subprocess.Popen | None]] = []

    def start(mode: str | None) -> str:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        proc = None
        if mode is not None:
            proc = subprocess.Popen([sys.executable, "-c", PEER, str(master), mode], pass_fds=(master,))
        opened.append((master, slave, proc))
        return os.ttyname(slave)

    yield start
    for master, slave, proc in opened:
        if proc is not None:
            proc.kill()
            proc.wait(5)
        os.close(slave)
        os.close(master)


def test_help_of_each_board_command(cli):
    for command in ("flash", "devices", "calibrate"):
        r = cli(command, "--help")
        assert r.returncode == 0 and f"usage: pnn {command}" in r.stdout


# -- pnn devices -----------------------------------------------------------------------------------


def test_devices_lists_a_serial_and_an_mqtt_board(cli, firmware_serial, firmware_mqtt, mosquitto):
    serial = firmware_serial(cable=True, seed=2)
    firmware_mqtt(mosquitto, device_id="sim-mq", seed=3)
    host, port = mosquitto
    r = cli("devices", "--serial", serial.host_path, "--mqtt", f"{host}:{port}", "--no-scan", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["url"]: row for row in json.loads(r.stdout)}
    assert rows[f"serial://{serial.host_path}"]["status"] == "online"
    assert rows[f"serial://{serial.host_path}"]["device"] == "sim-0"
    assert rows[f"mqtt://{host}:{port}/sim-mq"]["status"] == "online"
    assert rows[f"mqtt://{host}:{port}/sim-mq"]["caps"]["adc_bits"] == 12

    table = cli("devices", "--serial", serial.host_path)  # USB ports scanned too: none here, or others
    assert table.returncode == 0 and "sim-0" in table.stdout and "online" in table.stdout and "8/12" in table.stdout


def test_a_ping_the_board_answers_late_is_a_long_round_trip_not_no_answer(firmware_serial):
    # An emulated Pico paused (a garbage collection) on `pnn devices`' second PING past the retransmission
    # timeout its first round trips had set (~75 ms): the PING was sent once, and its timeout read as "no
    # answer" though the board was online. A PING now waits as any request does: re-sent, up to give_up.
    board = firmware_serial(cable=True)

    async def ping_across_a_pause() -> tuple[float, float]:
        device = make_device(parse_url(f"serial://{board.host_path}?{probe_params()}"), check=False)
        await device.open()
        try:
            quick = await device.ping()
            os.kill(board.proc.pid, signal.SIGSTOP)
            asyncio.get_running_loop().call_later(0.4, os.kill, board.proc.pid, signal.SIGCONT)
            return quick, await device.ping()
        finally:
            os.kill(board.proc.pid, signal.SIGCONT)
            await device.close()

    quick, paused = asyncio.run(ping_across_a_pause())
    assert quick < 0.2 and paused >= 0.4, (quick, paused)


def test_devices_with_one_board_down_still_lists_the_other(cli, firmware_serial, tmp_path):
    serial = firmware_serial(cable=True)
    r = cli("devices", "--serial", serial.host_path, "--serial", str(tmp_path / "ttyACM5"), "--no-scan")
    assert r.returncode == 0 and "online" in r.stdout and "no serial port" in r.stdout


def expect_one_line(r, *phrases: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    line = one_line(r.stderr)
    for phrase in phrases:
        assert phrase in line, line
    return line


def test_devices_wrong_port(cli, tmp_path):
    r = cli("devices", "--serial", str(tmp_path / "ttyUSB9"), "--no-scan")
    expect_one_line(r, "pnn devices: error: no board answered", f"no serial port {tmp_path / 'ttyUSB9'}",
                    "pnn devices")  # fmt: skip


def test_devices_silent_port(cli, pty_peer):
    path = pty_peer(None)
    expect_one_line(cli("devices", "--serial", path, "--no-scan"), f"no answer to HELLO on {path}",
                    "flashed with pnn firmware", f"pnn flash {path} --board")  # fmt: skip


def test_devices_unflashed_board(cli, repl_board: ReplBoard):
    r = cli("devices", "--serial", repl_board.path, "--no-scan")
    expect_one_line(r, f"{repl_board.path} answers like a bare MicroPython REPL", f"pnn flash {repl_board.path} --board")


def test_devices_protocol_mismatch(cli, pty_peer):
    path = pty_peer("proto2")
    r = cli("devices", "--serial", path, "--no-scan")
    expect_one_line(r, "speaks protocol 2, this host speaks 1", f"pnn flash {path} --board", "install the pnn version")


def test_devices_unreachable_broker(cli):
    port = free_port()
    r = cli("devices", "--mqtt", f"127.0.0.1:{port}", "--no-scan")
    expect_one_line(r, f"cannot reach the MQTT broker at 127.0.0.1:{port}", "is mosquitto running")


def test_devices_broker_without_boards(cli, mosquitto):
    host, port = mosquitto
    r = cli("devices", "--mqtt", f"{host}:{port}", "--no-scan")
    expect_one_line(r, "no boards found", "--mqtt HOST:PORT")


@pytest.mark.parametrize("value", ["localhost", "mqtt://h:x", "http://h:1883", "h:1883/dev"])
def test_devices_bad_broker_argument(cli, value):
    expect_one_line(cli("devices", "--mqtt", value, "--no-scan"), f"--mqtt {value!r}", "HOST:PORT")


# -- pnn calibrate: every way of not reaching the board --------------------------------------------


def test_calibrate_wrong_port(cli, tmp_path):
    r = cli("calibrate", f"serial://{tmp_path / 'ttyUSB9'}", "--out", str(tmp_path))
    expect_one_line(r, "pnn calibrate: error:", f"no serial port {tmp_path / 'ttyUSB9'}", "/dev/ttyACM0")
    assert not list(tmp_path.glob("*.json"))


def test_calibrate_silent_port(cli, pty_peer, tmp_path):
    path = pty_peer(None)
    r = cli("calibrate", f"serial://{path}?{FAST}", "--out", str(tmp_path))
    expect_one_line(r, f"no answer to HELLO on {path}", "is the board flashed with pnn firmware",
                    f"pnn flash {path} --board")  # fmt: skip


def test_calibrate_unflashed_board(cli, repl_board: ReplBoard, tmp_path):
    r = cli("calibrate", f"serial://{repl_board.path}?{FAST}", "--out", str(tmp_path))
    expect_one_line(r, "answers like a bare MicroPython REPL, not the pnn firmware", f"pnn flash {repl_board.path}")


@pytest.mark.parametrize(("mode", "phrase"), [("proto2", "speaks protocol 2, this host speaks 1"),
                                              ("refuse", "protocol version 1 not supported")])  # fmt: skip
def test_calibrate_protocol_mismatch(cli, pty_peer, tmp_path, mode, phrase):
    path = pty_peer(mode)
    r = cli("calibrate", f"serial://{path}?{FAST}", "--out", str(tmp_path))
    expect_one_line(r, path, phrase, f"pnn flash {path} --board", "install the pnn version that matches the board")


def test_calibrate_unreachable_broker(cli, tmp_path):
    port = free_port()
    r = cli("calibrate", f"mqtt://127.0.0.1:{port}/esp32-1?{FAST}", "--out", str(tmp_path))
    expect_one_line(r, f"cannot reach the MQTT broker at 127.0.0.1:{port}", "are the host and port right")


def test_calibrate_board_missing_from_a_live_broker(cli, mosquitto, tmp_path):
    host, port = mosquitto
    r = cli("calibrate", f"mqtt://{host}:{port}/ghost?{FAST}", "--out", str(tmp_path))
    expect_one_line(r, "board 'ghost' does not answer through the broker", "mqtt.id 'ghost'",
                    f"pnn devices --mqtt {host}:{port}")  # fmt: skip


@pytest.mark.parametrize("auth", ["", "pnn:wrong@"])
def test_calibrate_broker_refusing_the_credentials(cli, broker_factory, tmp_path, auth):
    broker = broker_factory(user="pnn", password="right")
    r = cli("calibrate", f"mqtt://{auth}{broker.host}:{broker.port}/esp32-1?{FAST}", "--out", str(tmp_path))
    line = expect_one_line(r, f"the MQTT broker at {broker.host}:{broker.port} refused the user name and password",
                           "mqtt://user:password@host:port/<device-id>")  # fmt: skip
    assert "wrong" not in line  # a password is never echoed
    r = cli("devices", "--mqtt", f"{auth}{broker.host}:{broker.port}", "--no-scan")
    assert "wrong" not in expect_one_line(r, "refused the user name and password", "--mqtt user:password@host:port")
    assert "wrong" not in r.stdout
    r = cli("devices", "--mqtt", f"{auth}{broker.host}:{broker.port}", "--no-scan", "--json")
    assert [row["url"] for row in json.loads(r.stdout)] == [f"mqtt://{broker.host}:{broker.port}"]


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("ftp://board", "unknown URL scheme 'ftp'"),
        ("/dev/ttyUSB0", "not a device URL"),
        ("serial://dev/ttyUSB0", "needs an absolute port path (three slashes)"),
        ("sim://electronic?hold=3", "unknown parameter 'hold'"),
    ],
)
def test_calibrate_bad_url(cli, url, phrase):
    expect_one_line(cli("calibrate", url), phrase, "sim://electronic")


@pytest.mark.parametrize(
    ("args", "phrase"),
    [(["--levels", "2"], "--levels must be >= 3"), (["--sweeps", "0"], "--sweeps must be >= 1"),
     (["--hold-ms", "1", "--reads", "100"], "--reads 100 is more than the 20 ticks of a hold")],
)  # fmt: skip
def test_calibrate_bad_settings(cli, args, phrase):
    expect_one_line(cli("calibrate", "sim://electronic", *args), phrase)
