"""MQTT transport (SPEC section 5): requests on pnn/<id>/req, replies on pnn/<id>/resp, retained
online/offline status on pnn/<id>/status with "offline" as the last will. Reconnects with exponential
backoff (re-joining Wi-Fi first on boards) and keeps the device loop, RESULT cache included, across them.
"""

import gc
import sys
import time

from pnn_fw.mqtt_client import TOO_LONG, MQTTClient
from pnn_protocol import errors

POLL_MS = 1000


def topics(device_id: str) -> tuple:
    """(req, resp, status) topics of a device."""
    base = "pnn/" + device_id + "/"
    return base + "req", base + "resp", base + "status"


def _log(msg: str) -> None:
    print("pnn mqtt: " + msg, file=sys.stderr)


def serve_mqtt(loop, settings: dict, wifi=None) -> str:
    """Serve `loop` over MQTT until a REPL or hard-reset request; returns that action.

    Args:
        loop: a DeviceLoop.
        settings: host, port, id, user, password, keepalive (s), backoff_max (s).
        wifi: an object with ensure() (pnn_fw.wifi.WiFi) on boards, None on the unix port.
    """
    req, resp, status = topics(settings["id"])
    req_b = req.encode()
    gc.collect()  # the client's buffer is as big as a frame: give it an unfragmented heap
    client = MQTTClient(
        settings["id"],
        settings["host"],
        settings["port"],
        settings.get("user"),
        settings.get("password"),
        settings.get("keepalive", 30),
        loop.max_frame,
    )
    backoff = 0.25
    backoff_max = settings.get("backoff_max", 16)
    while True:
        try:
            if wifi is not None:
                wifi.ensure()
            client.connect(status, b"offline", True, 1)
            client.subscribe(req)
            client.publish(status, b"online", True, 1)
            _log("online as %s at %s:%d" % (settings["id"], settings["host"], settings["port"]))
            backoff = 0.25
            while True:
                msg = client.check_msg(POLL_MS)
                if msg is None:
                    continue
                if msg == TOO_LONG:
                    buf, start, n = loop.frame_error(errors.TOO_LONG)
                elif bytes(msg[0]) != req_b:
                    continue
                else:
                    buf, start, n = loop.handle(msg[1])
                client.publish(resp, memoryview(buf)[start : start + n])
                if loop.action:
                    client.publish(status, b"offline", True, 1)
                    client.disconnect()
                    return loop.action
        except OSError as e:  # MQTTError included: drop the session, wait, start again
            client.close()
            _log("connection lost (%s); retrying in %.2f s" % (e, backoff))
            time.sleep(backoff)
            backoff = min(backoff * 2, backoff_max)
