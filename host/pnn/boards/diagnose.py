"""Why a board does not answer, and how to mend it: one line for a person at the bench.

`explain(url, error)` is for a board that could not be reached at a URL (`pnn calibrate`, `pnn train`);
`row_problem(row)` for a `pnn devices` row that is not online. Both look at what is actually there
(a knock on the serial port, a TCP connection to the broker) and match failures by type
(ProtocolVersionError, BrokerRefused, PortNotFound), never by message text.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from ..link.errors import BrokerRefused, ProtocolVersionError, UserError, caused_by
from ..link.url import parse_url
from .flash import board_names, knock


def boards_hint() -> str:
    """The board names a person can flash, as `a|b|c` for a command line."""
    return "|".join(n for n in board_names() if n != "sim")


def version_fix(flash: str) -> str:
    return f"flash the firmware of this pnn version with `{flash}`, or install the pnn version that matches the board"


def serial_problem(path: str) -> str:
    """What answers on a serial port that did not answer HELLO as pnn firmware, and how to mend it.

    Raises:
        NoAnswer, PortNotFound: the port cannot be opened (their message says how to mend it).
    """
    k = knock(path, timeout=0.5)
    flash = f"pnn flash {path} --board {boards_hint()}"
    if k.kind == "repl":
        return f"{path} answers like a bare MicroPython REPL, not the pnn firmware: flash it with `{flash}`"
    if k.kind == "silent":
        return (f"no answer to HELLO on {path}: is the board flashed with pnn firmware? run `{flash}` "
                "(and check it is the board's port: `pnn devices`)")  # fmt: skip
    if k.kind == "version":
        return f"{path} runs {k.describe()}: {version_fix(flash)}"
    if k.kind == "garbage":
        return (f"{path} sends bytes that are neither pnn frames nor a MicroPython REPL: is it the board's port, "
                "and the baud rate right (URL ?baud=N for a UART adapter)?")  # fmt: skip
    return f"{path} answers HELLO now ({k.describe()}); it was busy or resetting: try again"


def mqtt_problem(host: str, port: int, device: str | None) -> str:
    """Is the broker there at all? Then the board is the problem."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as e:
        return (f"cannot reach the MQTT broker at {host}:{port} ({e.strerror or e}): is mosquitto running there, "
                "and are the host and port right?")  # fmt: skip
    if device is None:
        return f"no pnn board has reported to the broker {host}:{port}: are the boards powered and on Wi-Fi?"
    return (f"board {device!r} does not answer through the broker {host}:{port}: is it powered, on Wi-Fi and "
            f"flashed with mqtt.id {device!r}? (`pnn devices --mqtt {host}:{port}` lists the boards online)")


def refused_fix(host: str, port: int, where: str) -> str:
    return f"the MQTT broker at {host}:{port} refused the user name and password: give the broker's own in {where}"


def explain(url: str, error: BaseException) -> str:
    """One line for a board that could not be reached at `url`: what is wrong and how to mend it."""
    u = parse_url(url)
    if caused_by(error, ProtocolVersionError):
        where, port = (u.target, u.target) if u.scheme == "serial" else (url.split("?")[0], "PORT")
        return f"{where}: {error}; {version_fix(f'pnn flash {port} --board {boards_hint()}')}"
    if u.scheme == "serial":
        return serial_problem(u.target)
    if u.scheme == "mqtt" and caused_by(error, BrokerRefused):
        return refused_fix(u.host, u.port, "the URL (mqtt://user:password@host:port/<device-id>)")
    if u.scheme == "mqtt":
        return mqtt_problem(u.host, u.port, u.target)
    return str(error)


def row_problem(row: dict[str, Any]) -> str:
    """Why a `pnn devices` row is not online, and how to mend it (one phrase).

    The row's `error_kind` (set by pnn.boards.discover from the failure's type) says what failed.
    """
    url, error, kind = row["url"], row.get("error", ""), row.get("error_kind", "")
    parts = urlsplit(url)
    if row["status"] == "broker unreachable" and kind == BrokerRefused.__name__:
        return refused_fix(parts.hostname or "", parts.port or 1883, "--mqtt user:password@host:port")
    if row["status"] == "broker unreachable":
        return mqtt_problem(parts.hostname or "", parts.port or 1883, None)
    if kind == ProtocolVersionError.__name__:
        port = parts.path if parts.scheme == "serial" else "PORT"
        return f"{url}: {error}; {version_fix(f'pnn flash {port} --board {boards_hint()}')}"
    if parts.scheme == "serial":
        try:
            return serial_problem(parts.path)
        except UserError as e:  # the port cannot be opened: its own message says how to mend it
            return str(e)
    if row["status"] != "no answer":
        return f"{url} is {row['status']} (its last word to the broker): power it up and check its Wi-Fi"
    return mqtt_problem(parts.hostname or "", parts.port or 1883, parts.path.strip("/"))


# Probe a slow board again allowing this many of its measured HELLO round trips per request: the async
# client's open (port set-up, HELLO, three PINGs) on a loaded host takes ~3x a bare knock, and load varies.
SLOW_BOARD_FACTOR = 10.0


def probe_slow_board(row: dict[str, Any]) -> dict[str, Any]:
    """A serial row that missed the quick probe but answers a knock's HELLO: probe it again with a timeout
    from the round trip the knock measured (an emulated or busy board answers in seconds, not 0.5 s)."""
    from .discover import PROBE_TIMEOUT_S, list_devices
    from .flash import NoAnswer

    if row["status"] == "online" or not row["url"].startswith("serial://"):
        return row
    path = row["url"][len("serial://") :]
    try:
        k = knock(path, timeout=2 * PROBE_TIMEOUT_S)
    except NoAnswer:
        return row
    if k.kind != "pnn":
        return row
    again = list_devices([path], scan_usb=False, timeout=max(PROBE_TIMEOUT_S, SLOW_BOARD_FACTOR * k.seconds))
    return dict(again[0], hint=row.get("hint", "")) if again else row
