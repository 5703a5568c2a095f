"""The firmware under real MicroPython (256 KiB heap) through a real mosquitto: topics, retained status and
last will, keepalive, reconnect after a broker restart, credentials, and bad input answered as SPEC.md says."""

from __future__ import annotations

import struct
import time

import paho.mqtt.client as mqtt
from _fixtures import board_file

from pnn.link.sync import MqttLink, SyncClient
from pnn_protocol import errors, messages


def codes(values) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


def client_for(sim) -> SyncClient:
    return SyncClient(MqttLink(sim.host, sim.port, sim.device_id), timeout=5.0)


def assert_run_works(c: SyncClient) -> None:
    r = c.run(codes([10, 200] * 32), 1, 64, 20000, n_out=8)
    assert r["t"] == "result" and len(r["resp"]) == 16


def retained_status(host: str, port: int, device_id: str, timeout: float = 5.0) -> tuple[str, bool]:
    """(payload, retain flag) of the first message on the device's status topic for a new subscriber."""
    got: list = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: got.append((m.payload.decode(), m.retain))
    c.connect(host, port)
    c.subscribe(f"pnn/{device_id}/status")
    deadline = time.monotonic() + timeout
    while not got and time.monotonic() < deadline:
        c.loop(0.05)
    c.disconnect()
    assert got, "no status message"
    return got[0]


def wait_status(host: str, port: int, device_id: str, want: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while retained_status(host, port, device_id)[0] != want:
        assert time.monotonic() < deadline, f"status never became {want!r}"
        time.sleep(0.1)


def test_hello_run_ping_and_retained_status(mosquitto, firmware_mqtt):
    sim = firmware_mqtt(mosquitto, "bench-a", seed=2)
    assert retained_status(*mosquitto, "bench-a") == ("online", True)
    c = client_for(sim)
    hello = c.hello()
    assert (hello["device"], hello["board"]) == ("bench-a", "sim")
    for batch, n_drive, n_out in ((1, 1, 1), (1, 256, 16), (16, 512, 512)):
        r = c.run(codes([n_drive % 256] * (batch * n_drive)), batch, n_drive, 20000, n_out=n_out)
        assert len(r["resp"]) == 2 * batch * n_out and r["overruns"] == 0
    assert bytes(c.ping(b"\x00\x03\xff")["data"]) == b"\x00\x03\xff"


def test_bad_input_answered_and_survived(mosquitto, firmware_mqtt):
    sim = firmware_mqtt(mosquitto)
    c = client_for(sim)
    c.link.send(bytes([0x42]) * (1 << 20))  # 1 MiB payload against a 256 KiB heap: skipped unread
    r = c.wait_for(None)
    assert (r["code"], r["id"]) == (errors.TOO_LONG, None)
    assert_run_works(c)
    c.link.send(b"\x93\x01\x02")  # msgpack, but not a map
    assert (c.wait_for(None)["code"], c.unmatched) == (errors.BAD_PAYLOAD, [])
    assert_run_works(c)
    assert c.request({"v": 1, "t": "launch", "id": 5})["code"] == errors.UNKNOWN_TYPE
    assert c.request({"v": 9, "t": "ping", "id": 6})["code"] == errors.BAD_VERSION
    r = c.request(messages.run(7, codes([1] * 8), 1, 8, 10))  # rate below min_rate
    assert (r["code"], r["id"]) == (errors.OUT_OF_RANGE, 7)
    assert_run_works(c)
    assert "MemoryError" not in sim.stderr()


def test_reconnects_after_broker_restart_and_keeps_its_cache(mosquitto_broker, firmware_mqtt):
    sim = firmware_mqtt(mosquitto_broker)
    c = client_for(sim)
    first = c.run(codes([50] * 64), 1, 64, 20000, req_id=1000)
    c.close()
    mosquitto_broker.restart()
    wait_status(*mosquitto_broker, "sim-0", "online")
    c = client_for(sim)
    again = c.run(codes([50] * 64), 1, 64, 20000, req_id=1000)  # a host retry across the outage
    assert bytes(again["resp"]) == bytes(first["resp"])
    assert_run_works(c)
    assert "connection lost" in sim.stderr()


def test_last_will_when_the_device_dies(mosquitto, firmware_mqtt):
    sim = firmware_mqtt(mosquitto, "doomed")
    assert retained_status(*mosquitto, "doomed")[0] == "online"
    sim.proc.kill()
    wait_status(*mosquitto, "doomed", "offline")


def test_repl_request_goes_offline_and_exits(mosquitto, firmware_mqtt):
    sim = firmware_mqtt(mosquitto, "leaving")
    c = client_for(sim)
    assert c.request(messages.repl(3))["t"] == "repl"
    assert sim.proc.wait(10) == 0
    assert retained_status(*mosquitto, "leaving") == ("offline", True)


def test_keepalive_pings_hold_an_idle_session(mosquitto, firmware_mqtt):
    """keepalive 1 s: the broker drops a client silent for 1.5 s, so only PINGREQs keep this one on."""
    sim = firmware_mqtt(mosquitto, extra=("--keepalive", "1"))
    time.sleep(2.5)
    assert_run_works(client_for(sim))
    assert "connection lost" not in sim.stderr()


def test_username_password(broker_factory, firmware_mqtt):
    auth_broker = broker_factory(user="pnn", password="s3cret")
    sim = firmware_mqtt(auth_broker, extra=("--user", "pnn", "--password", "s3cret"))
    c = SyncClient(MqttLink(*auth_broker, sim.device_id, user="pnn", password="s3cret"), timeout=5.0)
    assert_run_works(c)


def test_a_run_longer_than_the_keepalive_keeps_the_session(mosquitto, firmware_mqtt, tmp_path):
    """keepalive 2 s, a paced 10 s RUN: mosquitto drops a client silent for ~5 s (1.5 x keepalive, checked
    coarsely) and publishes its last will, and the board's own keepalive check would give up on a broker
    it has not heard for 3 s; the runner's PINGREQs between ticks hold the session, the RESULT arrives,
    no flap."""
    board = board_file(tmp_path, paced=True)
    sim = firmware_mqtt(mosquitto, "long-run", extra=("--keepalive", "2", "--board", board))
    seen: list[str] = []
    watch = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    watch.on_message = lambda _c, _u, m: seen.append(m.payload.decode())
    watch.connect(*mosquitto)
    watch.subscribe("pnn/long-run/status")
    watch.loop_start()
    try:
        c = client_for(sim)
        started = time.monotonic()
        r = c.run(codes([40] * 500), 1, 500, 1000, settle=9500, n_out=5)  # 10,000 ticks at 1 kS/s
        took = time.monotonic() - started
        assert r["t"] == "result" and len(r["resp"]) == 10
        assert took >= 9.5  # it really ran for longer than the keepalive
        assert_run_works(c)  # and the session serves on
    finally:
        watch.loop_stop()
        watch.disconnect()
    assert "offline" not in seen, seen
    assert "connection lost" not in sim.stderr()
