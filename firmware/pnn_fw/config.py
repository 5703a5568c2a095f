"""Board configuration: the board file, the untracked secrets overlay, and the device id.

A board file (firmware/boards/<name>.json, copied to the board as /board.json) holds pins, limits and
example network settings; real Wi-Fi and MQTT credentials live in an untracked secrets.json with the same
shape ({"wifi": {...}, "mqtt": {...}}), merged over it key by key.
"""

import json


def _merge(base: dict, over: dict) -> None:
    for k in over:
        if isinstance(over[k], dict) and isinstance(base.get(k), dict):
            _merge(base[k], over[k])
        else:
            base[k] = over[k]


def load_board(path: str, secrets_path=None) -> dict:
    """Read the board file and merge the secrets file over it (a missing secrets file is fine).

    Raises:
        OSError: no board file. ValueError: not a JSON object.
    """
    with open(path) as f:
        board = json.load(f)
    if not isinstance(board, dict):
        raise ValueError("%s: expected a JSON object" % path)
    if secrets_path:
        try:
            with open(secrets_path) as f:
                secrets = json.load(f)
        except OSError:
            secrets = None
        if isinstance(secrets, dict):
            _merge(board, secrets)
    return board


def device_id(board: dict) -> str:
    """The id HELLO reports and MQTT topics use: mqtt.id, else "id", else the board name."""
    mqtt = board.get("mqtt") or {}
    return mqtt.get("id") or board.get("id") or board.get("board") or "pnn"


def mqtt_settings(board: dict) -> dict:
    """The board's "mqtt" section with defaults filled in (port 1883, keepalive 30 s, no auth)."""
    m = board.get("mqtt") or {}
    host = m.get("host")
    if not host:
        raise ValueError("board file has no mqtt.host")
    port = m.get("port", 1883)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("mqtt.port is %r; expected 1..65535" % (port,))
    return {
        "host": host,
        "port": port,
        "id": device_id(board),
        "user": m.get("user") or None,
        "password": m.get("password") or None,
        "tls": bool(m.get("tls", False)),
        "keepalive": m.get("keepalive", 30),
        "backoff_max": m.get("backoff_max", 16),
    }
