"""pnn.connect over MQTT through a real mosquitto to the real firmware under MicroPython."""

from __future__ import annotations

import time

import pytest
import torch
from _fixtures import board_file, kill, restart

from pnn.boards.discover import list_devices
from pnn.devices import connect


def mqtt_url(broker, device: str, extra: str = "") -> str:
    host, port = tuple(broker)
    return f"mqtt://{host}:{port}/{device}?n_in=64&n_out=16{extra}"


def test_runs_through_the_broker_and_survives_its_restart(mosquitto_broker, firmware_mqtt) -> None:
    firmware_mqtt(mosquitto_broker, "m1", seed=1)
    with connect(mqtt_url(mosquitto_broker, "m1", "&timeout=0.3&heartbeat=0.3")) as board:
        assert board.capabilities["device"] == "m1"
        assert board(torch.rand(20, 64)).shape == (20, 16)
        mosquitto_broker.restart()  # the firmware and the host both reconnect
        response = board(torch.rand(40, 64))
        stats = board.stats()
    assert response.shape == (40, 16)
    assert stats["samples"] == 60 and stats["reconnects"] >= 1


def test_a_board_killed_mid_request_comes_back_and_the_batch_finishes(mosquitto_broker, firmware_mqtt, tmp_path) -> None:
    paced = board_file(tmp_path, paced=True)
    sim = firmware_mqtt(mosquitto_broker, "m2", seed=2, extra=("--board", paced))
    with connect(mqtt_url(mosquitto_broker, "m2", "&timeout=0.3&heartbeat=0.2&retries=10")) as board:
        future = board.submit(torch.rand(96, 64))  # ~0.35 s of board time
        time.sleep(0.08)
        kill(sim)  # the broker publishes its last will: "offline"
        time.sleep(0.3)
        host, port = tuple(mosquitto_broker)
        restart(sim, "--mqtt", f"{host}:{port}", "--id", "m2", "--seed", "2", "--board", paced, ready="online as")
        response, _ = future.result(timeout=30)
        stats = board.stats()
    assert response.shape == (96, 16)
    assert stats["samples"] == 96 and stats["reconnects"] >= 1


def test_credentials_are_used_and_a_wrong_password_is_refused(broker_factory, firmware_mqtt) -> None:
    broker = broker_factory("pnn", "s3cret")
    firmware_mqtt(broker, "m3", extra=("--user", "pnn", "--password", "s3cret"))
    with connect(mqtt_url(broker, "m3", "&user=pnn&password=s3cret")) as board:
        assert board(torch.rand(2, 64)).shape == (2, 16)
        assert "s3cret" not in board.id
    with pytest.raises(ConnectionError):
        connect(mqtt_url(broker, "m3", "&user=pnn&password=wrong&reconnect=1"))


def test_list_devices_reports_online_boards_with_caps_and_offline_ones(mosquitto_broker, firmware_mqtt, firmware_serial) -> None:
    firmware_mqtt(mosquitto_broker, "alive", seed=1)
    gone = firmware_mqtt(mosquitto_broker, "gone", seed=2)
    kill(gone)
    serial = firmware_serial(cable=True)
    host, port = tuple(mosquitto_broker)
    for _ in range(200):  # the broker publishes the last will once it notices the dead socket
        rows = {r["url"]: r for r in list_devices([serial.host_path], [f"mqtt://{host}:{port}"], scan_usb=False)}
        if rows.get(f"mqtt://{host}:{port}/gone", {}).get("status") == "offline":
            break
    alive = rows[f"mqtt://{host}:{port}/alive"]
    assert alive["status"] == "online" and alive["device"] == "alive" and alive["caps"]["max_batch"] == 16
    assert alive["rtt_ms"] > 0
    assert rows[f"mqtt://{host}:{port}/gone"]["status"] == "offline"
    assert rows[f"serial://{serial.host_path}"]["status"] == "online"
