"""MQTT transport: protocol payloads on `pnn/<id>/req` and `pnn/<id>/resp` through a broker (aiomqtt).

The board's retained `pnn/<id>/status` ("online" / "offline", the latter its last will) tells the
host at once when a board has gone: an "offline" ends the link, so requests in flight are retried
(or handed to another board) instead of waiting out their timeouts. A broker that restarts ends the
link too; the Device core reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
from typing import Any

import aiomqtt

from pnn_protocol import messages
from pnn_protocol.errors import ProtocolError

from . import wire as _wire
from .errors import BrokerRefused, LinkDown, NoSuchDevice
from .transport import Transport
from .url import DeviceURL

CONNECT_TIMEOUT_S = 5.0


class MqttTransport(Transport):
    """One broker connection per board (so a board's reconnects never disturb the others)."""

    max_copies = 16  # each message is delivered whole or dropped on its own: copies cost CPU, not wire time

    def __init__(self, url: DeviceURL) -> None:
        self.url = url
        self.req, self.resp, self.status = messages.topics(url.target, url["prefix"])
        self._client: aiomqtt.Client | None = None
        self._messages: Any = None
        self.bad_frames = 0

    async def open(self) -> None:
        try:  # TLS verifies the broker's certificate and host name (against `ca`, else the system's CAs)
            tls = ssl.create_default_context(cafile=self.url["ca"] or None) if self.url["tls"] else None
        except OSError as e:
            raise NoSuchDevice(f"CA certificate {self.url['ca']!r} for TLS: {e}") from e
        client = aiomqtt.Client(
            self.url.host, self.url.port, username=self.url["user"] or None, password=self.url["password"] or None,
            identifier=f"pnn-host-{os.getpid()}-{secrets.token_hex(4)}", keepalive=10, timeout=CONNECT_TIMEOUT_S,
            tls_context=tls,
        )
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError) as e:
            raise broker_error(e, f"broker {self.url.host}:{self.url.port}: {e}") from e
        self._client = client
        try:
            await client.subscribe(self.resp, qos=0)
            await client.subscribe(self.status, qos=1)
        except aiomqtt.MqttError as e:
            await self.close()
            raise LinkDown(f"subscribe failed: {e}") from e
        self._messages = client.messages

    async def send(self, msg: dict[str, Any]) -> None:
        if self._client is None:
            raise LinkDown("not connected to the broker")
        try:
            await self._client.publish(self.req, _wire.encode(msg), qos=0)
        except aiomqtt.MqttError as e:
            raise LinkDown(f"publish failed: {e}") from e

    async def recv(self) -> dict[str, Any]:
        while True:
            if self._messages is None:
                raise LinkDown("not connected to the broker")
            try:
                message = await anext(self._messages)
            except (aiomqtt.MqttError, StopAsyncIteration) as e:
                raise LinkDown(f"broker connection lost: {e}") from e
            payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
            if message.topic.matches(self.status):
                if bytes(payload).strip() == b"offline":
                    raise LinkDown(f"board {self.url.target} is offline")
                continue
            try:
                return _wire.decode(payload)
            except ProtocolError:
                self.damaged()

    async def close(self) -> None:
        client, self._client, self._messages = self._client, None, None
        if client is not None:
            try:
                await asyncio.wait_for(client.__aexit__(None, None, None), 2.0)
            except (aiomqtt.MqttError, OSError, TimeoutError):
                pass  # the broker is gone already; the socket is closed either way


# CONNACK codes for refused credentials: MQTT 3.1.1 return codes 4 and 5, MQTT 5 reason codes 134 and 135
_REFUSED = (4, 5, 134, 135)


def broker_error(error: BaseException, message: str) -> LinkDown:
    """What a failed broker connection means: BrokerRefused when the broker turned the credentials down
    (retrying will not help), else LinkDown (the broker may come back)."""
    rc = getattr(error, "rc", None)
    if isinstance(error, aiomqtt.MqttCodeError) and getattr(rc, "value", rc) in _REFUSED:
        return BrokerRefused(message)
    return LinkDown(message)
