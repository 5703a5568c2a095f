"""The one synchronous client's byte-level calls (pnn.link.sync), which `pnn flash` and the probe use.

The REPL knock itself runs against real MicroPython in test_flash.py; here the pieces it stands on: raw
reads with a deadline and a condition, frames found among text, a port without a file descriptor
(pyserial's own loopback, as pyserial on Windows has none), and the one-line errors of a port that is
not there.
"""

from __future__ import annotations

import os
import threading
import time
import tty

import pytest
import serial

from pnn.link.errors import PortNotFound
from pnn.link.sync import StreamLink, SyncClient, messages_in, open_serial
from pnn.link.wire import encode
from pnn_protocol import frame, messages, packb


def test_messages_in_finds_frames_among_text_of_any_version():
    other = packb({"v": 9, "t": messages.HELLO, "id": 1})
    data = b">>> \r\nTraceback\r\n" + b"\x00" + frame(other) + b"\x00garbage\x00" + frame(encode(messages.ping(5)))
    found = messages_in(data)
    assert [m.get("v") for m in found] == [9, messages.VERSION]
    assert found[1]["id"] == 5
    assert messages_in(b"no frames at all\r\n>>> ") == []


def test_read_raw_returns_when_its_condition_holds_or_the_deadline_passes():
    master, slave = os.openpty()
    tty.setraw(slave)
    link = StreamLink(master)
    try:
        os.write(slave, b"MicroPython v1.24\r\n>>> ")
        assert link.read_raw(10.0, lambda d: b">>>" in d).endswith(b">>> ")
        os.write(slave, b"first")
        assert link.read_raw(10.0) == b"first"  # no condition: the first bytes that come
        t0 = time.monotonic()
        assert link.read_raw(0.2, lambda d: b"never" in d) == b""
        assert time.monotonic() - t0 >= 0.2
    finally:
        os.close(slave)
        os.close(master)


def test_a_port_without_a_file_descriptor_is_read_with_its_own_timeout():
    port = serial.serial_for_url("loop://", timeout=0)  # pyserial's loopback: fileno() is unsupported
    link = StreamLink(port)
    link.write_raw(b"\r\x03")
    assert link.read_raw(2.0, lambda d: len(d) >= 2) == b"\r\x03"
    client = SyncClient(link, timeout=2.0)
    ping = messages.ping(client.new_id())
    link.send(encode(ping))  # the loop brings the request back: decoded as any payload
    assert link.recv(2.0) == [encode(ping)]
    assert link.recv(0.05) == []
    link.close()


def test_open_serial_names_a_missing_port_and_how_to_find_the_right_one(tmp_path):
    with pytest.raises(PortNotFound) as e:
        open_serial(str(tmp_path / "ttyUSB7"))
    assert f"no serial port {tmp_path / 'ttyUSB7'}" in str(e.value) and "pnn devices" in str(e.value)


def test_open_serial_opens_a_pty_as_a_board_port():
    master, slave = os.openpty()
    tty.setraw(master)
    link = open_serial(os.ttyname(slave))
    try:
        link.write_raw(b"\x00" + frame(encode(messages.hello_request(3))))
        got = messages_in(StreamLink(master).read_raw(10.0, lambda d: bool(messages_in(d))))
        assert [(m["t"], m["id"]) for m in got] == [(messages.HELLO, 3)]
    finally:
        link.close()
        os.close(slave)
        os.close(master)


def test_a_write_larger_than_the_port_buffer_waits_for_room():
    master, slave = os.openpty()
    tty.setraw(master)
    link = open_serial(os.ttyname(slave))  # non-blocking: a full buffer refuses the write
    data = bytes(range(256)) * 1024  # far more than a pty holds
    errors: list[BaseException] = []

    def write() -> None:
        try:
            link.write_raw(data)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        got = StreamLink(master).read_raw(60.0, lambda d: len(d) >= len(data))
        writer.join(60.0)
        assert errors == [] and got == data
    finally:
        link.close()
        os.close(slave)
        os.close(master)
