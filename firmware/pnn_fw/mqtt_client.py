"""A small MQTT 3.1.1 client for the device: QoS 0/1 publish, QoS 0 subscribe, last will, keepalive.

Built for the device loop: one preallocated buffer receives PUBLISH payloads (a payload over the
limit is skipped unread, never buffered) and assembles outgoing packets, so each packet leaves in one
socket write; TCP_NODELAY is set so a reply is not held back by Nagle's algorithm.
"""

import select
import socket
import struct
from time import ticks_diff, ticks_ms

from micropython import const

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)

IPPROTO_TCP = const(6)  # not exported by every port's socket module
TCP_NODELAY = const(1)

TOO_LONG = -1  # check_msg's report of a PUBLISH whose payload exceeded max_payload (skipped)
_PINGREQ = bytes((PINGREQ, 0))


class MQTTError(OSError):
    """The broker refused us, or the connection misbehaved: reconnect."""


def _varint(buf, pos: int, n: int) -> int:
    """Write MQTT's remaining-length varint at buf[pos]; returns the position after it."""
    while True:
        b = n & 0x7F
        n >>= 7
        buf[pos] = b | (0x80 if n else 0)
        pos += 1
        if not n:
            return pos


def _str(buf, pos: int, data) -> int:
    """Write a 2-byte-length-prefixed string/bytes at buf[pos]; returns the position after it."""
    k = len(data)
    struct.pack_into(">H", buf, pos, k)
    memoryview(buf)[pos + 2 : pos + 2 + k] = data
    return pos + 2 + k


class MQTTClient:
    """One MQTT session over TCP (connect again after an error: the caller owns the retry policy).

    Args:
        client_id: MQTT client id.
        host, port: broker address.
        user, password: credentials, or None.
        keepalive: seconds; the client sends PINGREQ when idle for half of it.
        max_payload: largest PUBLISH payload received or sent.
        tls: an ssl.SSLContext that verifies the broker (see mqtt_link.tls_context), or None for plain TCP.
    """

    def __init__(
        self, client_id, host, port=1883, user=None, password=None, keepalive=30, max_payload=1024, tls=None
    ):
        self.tls = tls
        self.client_id = client_id.encode()
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.max_payload = max_payload
        # Room for a PUBLISH header with a topic up to 200 bytes, or a CONNECT with its strings.
        self.buf = bytearray(max_payload + 256)
        self.mv = memoryview(self.buf)
        self.sock = None
        self._poller = select.poll()
        self._pid = 0
        self._last_tx = 0
        self._last_rx = 0
        self._ping_out = False
        self._half_ms = keepalive * 500

    # --- connection --------------------------------------------------------------------------------

    def connect(self, will_topic=None, will_msg=b"", will_retain=True, will_qos=1, timeout_s=10):
        """Open TCP, send CONNECT (clean session), wait for CONNACK. Raises MQTTError / OSError."""
        self.close()
        addr = socket.getaddrinfo(self.host, self.port)[0][-1]
        s = socket.socket()
        self.sock = s
        s.settimeout(timeout_s)
        s.connect(addr)
        try:
            s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # ports without it still work, only slower for small replies
        if self.tls is not None:
            # the handshake checks the broker's certificate chain and name; a failure raises here
            try:
                s = self.tls.wrap_socket(s, server_hostname=self.host)
            except ValueError as e:  # mbedtls reports a refused certificate as ValueError
                raise MQTTError("TLS: %s" % (str(e).strip() or "handshake failed"))
            self.sock = s
        self._poller = select.poll()
        self._poller.register(s, select.POLLIN)
        b = self.buf
        flags = 0x02  # clean session
        body = 10 + 2 + len(self.client_id)
        if will_topic:
            flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
            body += 4 + len(will_topic) + len(will_msg)
        if self.user:
            flags |= 0x80
            body += 2 + len(self.user)
            if self.password:
                flags |= 0x40
                body += 2 + len(self.password)
        if body + 5 > len(b):
            raise MQTTError("CONNECT too long")
        b[0] = CONNECT
        p = _varint(b, 1, body)
        p = _str(b, p, b"MQTT")
        b[p] = 4  # protocol level: 3.1.1
        b[p + 1] = flags
        struct.pack_into(">H", b, p + 2, self.keepalive)
        p = _str(b, p + 4, self.client_id)
        if will_topic:
            p = _str(b, p, will_topic.encode())
            p = _str(b, p, will_msg)
        if self.user:
            p = _str(b, p, self.user.encode())
            if self.password:
                p = _str(b, p, self.password.encode())
        self._send(p)
        t, n = self._read_header()
        if t != CONNACK or n != 2:
            raise MQTTError("expected CONNACK, got packet type 0x%02x" % t)
        self._read_exact(0, 2)
        if b[1] != 0:
            raise MQTTError("broker refused the connection: CONNACK code %d" % b[1])
        self._last_rx = ticks_ms()

    def subscribe(self, topic):
        """Subscribe at QoS 0 and wait for the SUBACK (other packets before it are dropped)."""
        self._pid = (self._pid % 0xFFFF) + 1
        tb = topic.encode()
        b = self.buf
        b[0] = SUBSCRIBE
        p = _varint(b, 1, 2 + 2 + len(tb) + 1)
        struct.pack_into(">H", b, p, self._pid)
        p = _str(b, p + 2, tb)
        b[p] = 0
        self._send(p + 1)
        while True:
            t, n = self._read_header()
            self._read_exact(0, n) if n <= len(b) else self._skip(n)
            if t == SUBACK:
                if n != 3 or b[2] == 0x80:
                    raise MQTTError("subscription to %s refused" % topic)
                return

    def publish(self, topic, payload, retain=False, qos=0):
        """Send one PUBLISH in one socket write (QoS 1: its PUBACK is read and dropped later)."""
        tb = topic.encode() if isinstance(topic, str) else topic
        k = len(payload)
        rl = 2 + len(tb) + (2 if qos else 0) + k
        if rl + 5 > len(self.buf):
            raise MQTTError("PUBLISH of %d bytes over the buffer" % k)
        b = self.buf
        b[0] = PUBLISH | (qos << 1) | (1 if retain else 0)
        p = _varint(b, 1, rl)
        p = _str(b, p, tb)
        if qos:
            self._pid = (self._pid % 0xFFFF) + 1
            struct.pack_into(">H", b, p, self._pid)
            p += 2
        self.mv[p : p + k] = payload
        self._send(p + k)

    def disconnect(self):
        """Polite goodbye (the broker then does not send the last will)."""
        try:
            self.buf[0] = DISCONNECT
            self.buf[1] = 0
            self._send(2)
        except OSError:
            pass
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    # --- receiving ---------------------------------------------------------------------------------

    def check_msg(self, timeout_ms):
        """Wait up to timeout_ms for a packet and handle it; keepalive pings happen in here too.

        Returns:
            None (nothing for the caller), TOO_LONG (a PUBLISH over max_payload was skipped), or
            (topic, payload): memoryviews into the client's buffer, valid until the next call.

        Raises:
            MQTTError / OSError: connection lost or keepalive expired.
        """
        # What is already waiting is read before the keepalive is judged: after a long RUN the broker's
        # PINGRESPs sit unread in the socket, and they prove the session alive.
        if not self._poller.poll(0):
            self._keepalive()
            if not self._poller.poll(timeout_ms):
                self._keepalive()
                return None
        t, n = self._read_header()
        self._last_rx = ticks_ms()
        self._ping_out = False
        if t & 0xF0 != PUBLISH:
            if n:
                self._skip(n)  # PINGRESP, PUBACK, ...: nothing to do
            return None
        qos = (t >> 1) & 3
        if n < 2:
            raise MQTTError("malformed PUBLISH")
        self._read_exact(0, 2)
        tl = (self.buf[0] << 8) | self.buf[1]
        head = 2 + tl + (2 if qos else 0)
        if tl > 200 or head > n:
            raise MQTTError("PUBLISH topic of %d bytes" % tl)
        self._read_exact(0, head - 2)
        k = n - head
        if k > self.max_payload:
            self._skip(k)
            return TOO_LONG
        # topic at buf[0:tl]; payload goes after it (buf holds max_payload + 256)
        self._read_exact(tl, k)
        return self.mv[:tl], self.mv[tl : tl + k]

    def _keepalive(self):
        now = ticks_ms()
        half = self.keepalive * 500
        if self.keepalive and ticks_diff(now, self._last_rx) > 3 * half:
            raise MQTTError("keepalive: no answer from the broker for %d s" % self.keepalive)
        if self.keepalive and not self._ping_out and ticks_diff(now, self._last_tx) > half:
            self.buf[0] = PINGREQ
            self.buf[1] = 0
            self._send(2)
            self._ping_out = True

    def service(self):
        """Keep the session alive while the caller cannot read (the runner calls this during a RUN).

        Sends a PINGREQ when half the keepalive has passed since the last packet out; reads nothing
        (PINGRESPs and requests wait in the socket for check_msg) and allocates nothing. A socket
        error is left for check_msg to meet after the RUN, so the RUN always finishes.
        """
        if self._half_ms and ticks_diff(ticks_ms(), self._last_tx) > self._half_ms:
            s = self.sock
            if s is not None:
                try:
                    s.write(_PINGREQ)
                except OSError:
                    pass
            self._last_tx = ticks_ms()

    def _read_header(self):
        """Read a fixed header: returns (first byte, remaining length)."""
        b = self.buf
        self._read_exact(0, 1)
        t = b[0]
        n = 0
        shift = 0
        while True:
            self._read_exact(0, 1)
            n |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return t, n
            shift += 7
            if shift > 21:
                raise MQTTError("malformed remaining length")

    def _read_exact(self, pos, n):
        if n == 0:
            return
        s = self.sock
        if s is None:
            raise MQTTError("not connected")
        got = s.readinto(self.mv[pos : pos + n])
        if got != n:
            raise MQTTError("connection closed by the broker")

    def _skip(self, n):
        """Consume n bytes without keeping them (through the buffer, in pieces)."""
        while n > 0:
            k = n if n < len(self.buf) else len(self.buf)
            self._read_exact(0, k)
            n -= k

    def _send(self, n):
        s = self.sock
        if s is None:
            raise MQTTError("not connected")
        s.write(self.mv[:n])
        self._last_tx = ticks_ms()
