"""Security against a real mosquitto run from the shipped hardware/mosquitto/ configuration and ACL, with a
password file and a TLS certificate from a test CA that openssl makes here, and the firmware under real
MicroPython (256 KiB heap) connecting over TLS as a board does: board.json + secrets.json + ca.pem.

Checked: the trainer and boards work with their passwords over TLS; a wrong password, no password, plain
TCP on the TLS port, or a broker certificate from another CA gets nothing through; the ACL keeps a
board (even one with valid credentials) to its own topics and leaves requests to the trainer; passwords
appear in no log, repr, id or error message.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import paho.mqtt.client as mqtt
import pytest
import torch
from conftest import Broker, free_port

from pnn.devices import connect
from pnn_protocol import messages, packb

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hardware" / "mosquitto"
PASSWORDS = {"trainer": "tr41ner-S3cret", "board-a": "b0ardA-S3cret", "board-b": "b0ardB-S3cret"}
LINK = "n_in=16&n_out=8&timeout=0.5&heartbeat=0.5"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> Path:
    """A self-signed CA (EC P-256) in folder/<name>.crt and .key."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=pnn test {name}", cwd=folder)  # fmt: skip
    return folder / f"{name}.crt"


def make_server_cert(folder: Path, ca: str) -> None:
    """server.crt/.key for 127.0.0.1 and localhost, signed by folder/<ca>.crt."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=pnn test broker", cwd=folder)  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-out", "server.crt", "-extfile", "san.cnf", cwd=folder)  # fmt: skip


@dataclass
class Secure:
    """The broker: TLS on `port`, plain (password still required) on `plain_port`; `ca` signed its cert."""

    broker: Broker
    port: int
    plain_port: int
    ca: Path
    other_ca: Path
    folder: Path


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    folder = tmp_path_factory.mktemp("secure-broker")
    ca, other = make_ca(folder, "ca"), make_ca(folder, "other")
    make_server_cert(folder, "ca")
    passwd = folder / "passwd"
    passwd.write_text("".join(f"{u}:{p}\n" for u, p in PASSWORDS.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
    port, plain = free_port(), free_port()
    # the shipped configuration, pointed at this test's files and ports
    swap = {"password_file": str(passwd), "acl_file": str(SHIPPED / "acl"), "cafile": str(ca),
            "certfile": str(folder / "server.crt"), "keyfile": str(folder / "server.key")}  # fmt: skip
    lines = []
    for line in (SHIPPED / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in swap:
            line = f"{key} {swap[key]}"
        elif line == "listener 8883":
            line = f"listener {port} 127.0.0.1"
        elif line.startswith("listener 1883"):
            line = f"listener {plain} 127.0.0.1"
        lines.append(line)
    if os.geteuid() == 0:
        lines.append("user root")  # else mosquitto drops to a user who cannot read pytest's folders
    broker = Broker(folder)
    broker.port = port
    broker.config.write_text("\n".join(lines) + "\n")
    broker.start()
    yield Secure(broker, port, plain, ca, other, folder)
    broker.stop()


# -- the firmware, started as a board starts: board.json + secrets.json + ca.pem in its folder -------
LAUNCH = """
import sys
sys.path.insert(0, {proto!r})
sys.path.insert(0, {fw!r})
from pnn_fw import config
from pnn_fw.mqtt_link import make_client, serve_mqtt
from pnn_fw.hal import make_hal
from pnn_fw.loop import DeviceLoop
board = config.load_board("board.json", "secrets.json")
settings = config.mqtt_settings(board)
client = make_client(settings, board["max_frame"])  # as main.py: the frame-sized buffer first
loop = DeviceLoop(board, make_hal(board), config.device_id(board))
serve_mqtt(loop, settings, client=client)
"""


class Board:
    """The firmware under MicroPython as board `device_id`, over TLS with `ca` as its ca.pem."""

    def __init__(self, folder: Path, secure: Secure, device_id: str, password: str, ca: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        board = json.loads((ROOT / "firmware" / "boards" / "sim.json").read_text())
        board["mqtt"] = {
            "host": "127.0.0.1",
            "port": secure.port,
            "id": device_id,
            "tls": True,
            "backoff_max": 1,
        }
        (folder / "board.json").write_text(json.dumps(board))
        (folder / "secrets.json").write_text(json.dumps({"mqtt": {"user": device_id, "password": password}}))
        (folder / "ca.pem").write_bytes(ca.read_bytes())
        (folder / "launch.py").write_text(
            LAUNCH.format(proto=str(ROOT / "protocol"), fw=str(ROOT / "firmware"))
        )
        self.log = folder / "log.txt"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(["micropython", "-X", "heapsize=256k", "launch.py"], cwd=folder,
                                         stdout=f, stderr=f)  # fmt: skip

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """The log once `text` is in it (the test fails with the log if it never comes)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log.read_text(errors="replace")):
            assert self.proc.poll() is None and time.monotonic() < deadline, f"never logged {text!r}:\n{log}"
            time.sleep(0.02)
        return log

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture(scope="module")
def board_a(secure: Secure) -> Iterator[Board]:
    board = Board(secure.folder / "board-a", secure, "board-a", PASSWORDS["board-a"], secure.ca)
    board.wait_for("online as board-a")
    yield board
    board.stop()


# -- plain MQTT clients (paho), for intruders and for watching ---------------------------------------
class Client:
    """A paho client with its own network thread; records what it receives, in order."""

    def __init__(self, secure: Secure, user: str | None, password: str | None, *, tls: bool = True,
                 ca: Path | None = None, port: int | None = None) -> None:  # fmt: skip
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.got: list[tuple[str, bytes, bool]] = []
        self.granted: list[int] = []
        self._event = threading.Event()
        self.refusal = ""  # why the broker refused the connection ("" if it accepted it)
        if user:
            self.c.username_pw_set(user, password)
        if tls:
            self.c.tls_set(ca_certs=str(ca or secure.ca))
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.got.append((m.topic, m.payload, m.retain))
        self.c.on_subscribe = lambda _c, _u, _mid, codes, _p: (self.granted.extend(int(x.value) for x in codes),
                                                              self._event.set())  # fmt: skip
        self.c.connect("127.0.0.1", port or secure.port)
        self.c.loop_start()
        assert self._event.wait(10), "no CONNACK"
        self._event.clear()

    def _on_connect(self, _c, _u, _flags, reason, _props) -> None:
        self.refusal = str(reason) if reason.is_failure else ""
        self._event.set()

    def subscribe(self, *topics: str) -> list[int]:
        self.granted.clear()
        self.c.subscribe([(t, 1) for t in topics])
        assert self._event.wait(10), "no SUBACK"
        self._event.clear()
        return list(self.granted)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """QoS 1 and wait for the PUBACK: the broker has dealt with it (delivered, or dropped by the ACL)."""
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_until(self, topic: str, payload: bytes | Callable[[bytes], bool], timeout: float = 10.0) -> None:
        """Until `payload` (those bytes, or bytes it accepts) has arrived on `topic`."""
        want = payload if callable(payload) else payload.__eq__
        deadline = time.monotonic() + timeout
        while not any(t == topic and want(p) for t, p, _ in self.got):
            assert time.monotonic() < deadline, f"{payload!r} never arrived on {topic}: {self.got}"
            time.sleep(0.01)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def trainer_url(secure: Secure, extra: str = "") -> str:
    return (f"mqtt://127.0.0.1:{secure.port}/board-a?{LINK}&user=trainer&password={PASSWORDS['trainer']}"
            f"&tls=1&ca={secure.ca}{extra}")  # fmt: skip


# -- the tests ----------------------------------------------------------------------------------------
def test_trainer_and_board_work_with_passwords_over_tls(secure, board_a) -> None:
    assert f"online as board-a at 127.0.0.1:{secure.port} over TLS" in board_a.wait_for("online as")
    with connect(trainer_url(secure)) as board:
        assert board.capabilities["device"] == "board-a"
        assert board(torch.rand(6, 16)).shape == (6, 8)
    plain = (
        f"mqtt://127.0.0.1:{secure.plain_port}/board-a?{LINK}&user=trainer&password={PASSWORDS['trainer']}"
    )
    with connect(plain) as board:  # the loopback-only listener, for a trainer on the broker's machine
        assert board(torch.rand(2, 16)).shape == (2, 8)


def test_wrong_or_missing_credentials_get_nothing_through(secure, board_a) -> None:
    with pytest.raises(ConnectionError) as refused:
        connect(trainer_url(secure, "&reconnect=1").replace(PASSWORDS["trainer"], "guess"))
    assert "guess" not in str(refused.value)
    for user, password in ((None, None), ("trainer", "guess"), ("nobody", "x")):
        client = Client(secure, user, password)
        assert client.refusal == "Not authorized", f"{user}/{password} was let in"
        client.close()
    impostor = Board(secure.folder / "impostor", secure, "board-b", "guess", secure.ca)
    try:
        log = impostor.wait_for("CONNACK code 5")
    finally:
        impostor.stop()
    assert "online as" not in log and "guess" not in log
    watcher = Client(secure, "trainer", PASSWORDS["trainer"])
    watcher.subscribe("pnn/board-b/status", "pnn/board-a/status")
    watcher.wait_until("pnn/board-a/status", b"online")  # retained messages come right after the SUBACK
    assert not any(t == "pnn/board-b/status" for t, _, _ in watcher.got), watcher.got
    watcher.close()


def test_the_acl_keeps_each_board_to_its_own_topics(secure, board_a) -> None:
    trainer = Client(secure, "trainer", PASSWORDS["trainer"])
    trainer.subscribe("pnn/board-a/resp", "pnn/board-a/status")
    trainer.wait_until("pnn/board-a/status", b"online")
    # an intruder with valid credentials: another board's
    intruder = Client(secure, "board-b", PASSWORDS["board-b"])
    intruder.subscribe("pnn/board-a/req", "pnn/board-a/resp", "pnn/+/status", "pnn/board-b/req")
    drive = bytes(32)
    intruder.publish("pnn/board-a/req", packb(messages.run(777, drive, 1, 16, 20000, n_out=8)))
    intruder.publish(
        "pnn/board-b/req", packb(messages.ping(776))
    )  # not even to itself: requests are the trainer's
    intruder.publish("pnn/board-a/resp", packb(messages.result(778, bytes(16), 1, 8, 50, 0)))
    intruder.publish("pnn/board-a/status", b"offline", retain=True)
    # the trainer's own request, after all of those: board-a answers it, and only it
    trainer.publish("pnn/board-a/req", packb(messages.ping(779)))
    trainer.wait_until("pnn/board-a/resp", lambda p: msgpack.unpackb(p)["id"] == 779)  # its PONG, any boot id
    answers = [
        messages.check_response(msgpack.unpackb(p))[1] for t, p, _ in trainer.got if t.endswith("/resp")
    ]
    assert answers == [779], "board-a ran nothing for the intruder, and no forged reply reached the trainer"
    assert [p for t, p, _ in trainer.got if t.endswith("/status")] == [b"online"], "no forged offline"
    # the intruder, after a message it may read (its own req topic, written by the trainer), has read
    # nothing of board-a's, and not its own request to itself either: that publish was dropped
    trainer.publish("pnn/board-b/req", b"sync")
    intruder.wait_until("pnn/board-b/req", b"sync")
    assert [(t, p) for t, p, _ in intruder.got] == [("pnn/board-b/req", b"sync")], intruder.got
    for client in (trainer, intruder):
        client.close()
    watcher = Client(secure, "trainer", PASSWORDS["trainer"])
    watcher.subscribe("pnn/board-a/status")
    watcher.wait_until("pnn/board-a/status", b"online")  # still the retained truth
    watcher.close()


def test_plain_text_and_a_broker_from_another_ca_are_refused(secure, board_a) -> None:
    with pytest.raises(ConnectionError):
        connect(trainer_url(secure, "&reconnect=1").replace(str(secure.ca), str(secure.other_ca)))
    with pytest.raises(ConnectionError):
        connect(trainer_url(secure, "&reconnect=1").replace("&tls=1", ""))
    with pytest.raises(Exception, match="(?i)certificate"):
        Client(secure, "trainer", PASSWORDS["trainer"], ca=secure.other_ca)
    fooled = Board(secure.folder / "fooled", secure, "board-b", PASSWORDS["board-b"], secure.other_ca)
    try:
        log = fooled.wait_for("TLS:")
    finally:
        fooled.stop()
    assert "not correctly signed" in log and "online as" not in log


def test_passwords_are_never_logged_or_shown(secure, board_a, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with connect(trainer_url(secure)) as board:
        board(torch.rand(2, 16))
        shown = [repr(board), board.id, repr(board.aio.url), str(board.describe()), str(board.stats())]
    with pytest.raises(ConnectionError) as refused:
        connect(trainer_url(secure, "&reconnect=1").replace("user=trainer", "user=nobody"))
    with pytest.raises(ValueError) as bad_url:
        connect(trainer_url(secure, "&bogus=1"))
    shown += [str(refused.value), str(bad_url.value), caplog.text, board_a.log.read_text(errors="replace")]
    for secret in PASSWORDS.values():
        assert not any(secret in text for text in shown), secret
    assert "password=***" in str(bad_url.value)  # what is wrong is still said
