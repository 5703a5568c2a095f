"""MQTT transport (SPEC section 5): requests on pnn/<id>/req, replies on pnn/<id>/resp, retained
online/offline status on pnn/<id>/status with "offline" as the last will. Reconnects with exponential
backoff (re-joining Wi-Fi first on boards) and keeps the device loop, RESULT cache included, across them.
"""

import gc
import sys
import time

from micropython import const

from pnn_fw.mqtt_client import TOO_LONG, MQTTClient
from pnn_protocol import errors
from pnn_protocol.messages import topics

POLL_MS = const(1000)


def _log(msg: str) -> None:
    print("pnn mqtt: " + msg, file=sys.stderr)


def tls_context(settings: dict):
    """An ssl.SSLContext that only trusts a broker signed by the CA in settings["ca"] (a PEM or DER
    file; default "ca.pem" beside main.py), or None when settings["tls"] is off.

    Raises:
        ValueError: TLS is on but the CA file is missing or not a certificate.
    """
    if not settings.get("tls"):
        return None
    import ssl

    path = settings.get("ca") or "ca.pem"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise ValueError("TLS is on but the broker's CA certificate %s is missing" % path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # MicroPython's default is CERT_NONE: say it
    try:
        begin = data.find(b"-----BEGIN")
        if begin >= 0:  # PEM: MicroPython's mbedtls takes DER, so unwrap the first certificate
            import binascii

            body = data[data.index(b"\n", begin) + 1 : data.index(b"-----END", begin)]
            data = binascii.a2b_base64(body.replace(b"\r", b"").replace(b"\n", b""))
        ctx.load_verify_locations(cadata=data)
    except ValueError as e:
        raise ValueError("%s is not a CA certificate (PEM or DER): %s" % (path, e))
    return ctx


def _set_clock(host: str) -> bool:
    """Set the board's clock by NTP (best effort): boards check a certificate's dates against it."""
    try:
        import ntptime

        ntptime.host = host
        ntptime.settime()
        return True
    except Exception as e:  # no NTP on this network: the handshake may still pass, or say why not
        _log("clock not set from %s (%s); TLS certificate dates may look wrong" % (host, e))
        return False


def make_client(settings: dict, max_frame: int) -> MQTTClient:
    """The MQTT client for `settings` (see serve_mqtt), its frame-sized buffer allocated now.

    Make it before the DeviceLoop: its buffer needs max_frame + 256 contiguous bytes, which a heap
    already holding the loop's buffers among the compiled modules may no longer have.
    """
    tls = tls_context(settings)
    gc.collect()  # the client's buffer is as big as a frame: give it an unfragmented heap
    return MQTTClient(
        settings["id"],
        settings["host"],
        settings["port"],
        settings.get("user"),
        settings.get("password"),
        settings.get("keepalive", 30),
        max_frame,
        tls,
    )


def serve_mqtt(loop, settings: dict, wifi=None, client=None) -> str:
    """Serve `loop` over MQTT until a REPL or hard-reset request; returns that action.

    Args:
        loop: a DeviceLoop.
        settings: host, port, id, user, password, keepalive (s), backoff_max (s), tls (bool), ca (path),
            ntp (an NTP server for the board's clock, needed to check certificate dates; pool.ntp.org).
            With passwords, the board's MQTT user name should be its id (hardware/mosquitto/acl).
        wifi: an object with ensure() (pnn_fw.wifi.WiFi) on boards, None on the unix port.
        client: from make_client(settings, loop.max_frame), made before the loop; None: made here.
    """
    req, resp, status = topics(settings["id"])
    req_b = req.encode()
    if client is None:
        client = make_client(settings, loop.max_frame)
    tls = client.tls
    # A RUN may outlast the keepalive: the runner calls this between ticks to send PINGREQs (SPEC 5).
    loop.runner.idle = client.service
    backoff = 0.25
    backoff_max = settings.get("backoff_max", 16)
    clock_set = tls is None or wifi is None  # the unix port has the host's clock
    while True:
        try:
            if wifi is not None:
                wifi.ensure()
            if not clock_set:
                clock_set = _set_clock(settings.get("ntp") or "pool.ntp.org")
            client.connect(status, b"offline", True, 1)
            client.subscribe(req)
            client.publish(status, b"online", True, 1)
            where = (settings["id"], settings["host"], settings["port"], " over TLS" if tls else "")
            _log("online as %s at %s:%d%s" % where)
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
