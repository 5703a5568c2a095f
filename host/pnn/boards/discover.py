"""Find boards: serial ports that answer HELLO, and MQTT boards that left a retained status.

USB serial ports are probed in parallel (a MicroPython or USB-serial VID/PID is shown as a hint; ports
without a USB id, such as /dev/ttyS0, are probed only when named). MQTT brokers are asked for
`<prefix>/+/status`; every board that says "online" is greeted, and one that says "offline" is listed
as such. Each answer comes with its capabilities and health (PING round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import serialx

from pnn_protocol import messages

from ..link.client import make_device
from ..link.errors import kind_of
from ..link.mqtt import broker_error
from ..link.url import parse_url

# (vid, pid or None for any) -> what the id suggests
USB_HINTS: dict[tuple[int, int | None], str] = {
    (0x2E8A, 0x0005): "MicroPython (RP2040)",
    (0xF055, 0x9800): "MicroPython (pyboard)",
    (0x303A, None): "Espressif native USB (ESP32-S2/S3/C3)",
    (0x10C4, 0xEA60): "CP210x USB-UART (ESP32 DevKit)",
    (0x1A86, 0x7523): "CH340 USB-UART (ESP32 clone)",
    (0x1A86, 0x55D4): "CH9102 USB-UART (ESP32)",
    (0x0403, 0x6001): "FTDI USB-UART",
}
PROBE_TIMEOUT_S = 0.5  # a first HELLO knows no round trip yet; a slower board is probed again (cli.cmd_devices)


def probe_params(timeout: float = PROBE_TIMEOUT_S) -> str:
    """URL parameters of one quick HELLO + PING probe, allowing `timeout` s per request before its first
    re-send, and the connect's wait for the HELLO to each PING (a board that answered HELLO and then
    went silent holds `pnn devices` that long, no longer)."""
    wait = max(1.5, 3 * timeout)
    return f"reconnect={wait:g}&give_up={wait:g}&timeout={timeout:g}&heartbeat=0"


def usb_hint(vid: int | None, pid: int | None) -> str:
    if vid is None:
        return ""
    return USB_HINTS.get((vid, pid)) or USB_HINTS.get((vid, None)) or f"USB {vid:04x}:{pid or 0:04x}"


async def _greet(url: str, hint: str = "", status: str = "") -> dict[str, Any]:
    """HELLO + PING one address; a row for the table whether it answers or not."""
    row: dict[str, Any] = {"url": url.split("?")[0], "hint": hint, "status": status or "no answer"}
    device = make_device(parse_url(url), check=False)
    try:
        await device.open()
        rtt = min([await device.ping() for _ in range(3)])
    except (ConnectionError, TimeoutError, ValueError) as e:
        row["error"], row["error_kind"] = str(e), kind_of(e)
        return row
    finally:
        await device.close()
    hello, caps = device.hello, device.hello.get("caps", {})
    row.update(status="online", device=hello.get("device"), board=hello.get("board"), fw=hello.get("fw"),
               rtt_ms=round(rtt * 1e3, 2), caps={k: v for k, v in caps.items() if k != "hal"})
    return row


async def _mqtt_statuses(broker: str, prefix: str, wait: float) -> dict[str, str]:
    """device id -> retained status text, from one broker."""
    parts = urlsplit(broker)
    found: dict[str, str] = {}
    async with aiomqtt.Client(parts.hostname or "localhost", parts.port or 1883, username=parts.username,
                              password=parts.password, timeout=5) as client:
        await client.subscribe(messages.topics("+", prefix)[2], qos=1)
        try:
            async with asyncio.timeout(wait):  # retained messages arrive right after SUBACK
                async for message in client.messages:
                    device = str(message.topic).split("/")[-2]
                    found[device] = bytes(message.payload or b"").decode(errors="replace").strip()  # type: ignore[arg-type]
        except TimeoutError:
            pass
    return found


async def alist_devices(serial: Sequence[str] = (), mqtt: Sequence[str] = (), *, scan_usb: bool = True,
                        prefix: str = "pnn", wait: float = 0.5,
                        timeout: float = PROBE_TIMEOUT_S) -> list[dict[str, Any]]:  # fmt: skip
    """The asyncio form of `list_devices`."""
    probe = probe_params(timeout)
    probes: list[asyncio.Future[dict[str, Any]]] = []
    rows: list[dict[str, Any]] = []
    ports: dict[str, str] = {path: "" for path in serial}
    if scan_usb:
        for info in await serialx.async_list_serial_ports():
            if info.vid is not None:
                ports.setdefault(info.device, usb_hint(info.vid, info.pid))
    for path, hint in ports.items():
        probes.append(asyncio.ensure_future(_greet(f"serial://{path}?{probe}", hint)))
    for broker in mqtt:
        parts = urlsplit(broker)
        try:
            statuses = await _mqtt_statuses(broker, prefix, wait)
        except (aiomqtt.MqttError, OSError) as e:
            rows.append({"url": broker, "status": "broker unreachable", "error": str(e), "hint": "",
                         "error_kind": kind_of(broker_error(e, str(e)))})
            continue
        for device, status in sorted(statuses.items()):
            url = f"mqtt://{parts.netloc}/{device}?{probe}&prefix={prefix}"
            if status == "online":
                probes.append(asyncio.ensure_future(_greet(url, "mqtt", status)))
            else:
                rows.append({"url": url.split("?")[0], "status": status or "unknown", "hint": "mqtt"})
    rows.extend(await asyncio.gather(*probes))
    return sorted(rows, key=lambda r: (r["status"] != "online", r["url"]))


def list_devices(serial: Sequence[str] = (), mqtt: Sequence[str] = (), *, scan_usb: bool = True,
                 prefix: str = "pnn", wait: float = 0.5, timeout: float = PROBE_TIMEOUT_S) -> list[dict[str, Any]]:
    """Boards reachable from this host, online ones first.

    Args:
        serial: extra port paths to probe (ptys, /dev/ttyS*: ports without a USB id are not scanned).
        mqtt: brokers to ask, as `mqtt://[user:password@]host:port`.
        scan_usb: also probe every USB serial port the system lists.
        prefix: MQTT topic prefix.
        wait: seconds to collect retained status messages.
        timeout: seconds each probe request may take (a slow board's measured round trip, scaled).

    Returns:
        One dict per port or board: url, status ("online", "offline", "no answer", ...), hint (USB
        VID/PID guess), and for boards that answered: device, board, fw, caps, rtt_ms.
    """
    from ..link import loop as _loop

    return _loop.run(alist_devices(serial, mqtt, scan_usb=scan_usb, prefix=prefix, wait=wait, timeout=timeout))


def table(rows: list[dict[str, Any]]) -> Any:
    """A rich Table of `list_devices` rows (for `pnn devices`)."""
    from rich.table import Table

    t = Table(title="pnn devices")
    for column in ("url", "status", "device", "board", "fw", "DAC/ADC bits", "max drive x batch", "rate (S/s)",
                   "RTT (ms)", "hint"):
        t.add_column(column)
    for r in rows:
        c = r.get("caps") or {}
        bits = f"{c['dac_bits']}/{c['adc_bits']}" if c else ""
        size = f"{c['max_drive']} x {c['max_batch']}" if c else ""
        rate = f"{c['min_rate']}..{c['max_rate']}" if c else ""
        t.add_row(r["url"], r["status"], str(r.get("device", "")), str(r.get("board", "")), str(r.get("fw", "")),
                  bits, size, rate, str(r.get("rtt_ms", "")), r.get("hint", "") or r.get("error", ""))
    return t
