"""Byte-stream transport: frames (SPEC section 1) over USB serial on boards, or a pty on the unix port.

A port object has readinto(buf) -> n >= 1 (blocks until some bytes are there, returns what is there),
write(data) and close(). StdioPort is the board's USB REPL stream with Ctrl-C disabled (0x03 is data);
PtyPort opens a tty path on the unix port. `serve` runs the loop until a REPL request or the peer hangs up.
"""

import select
import sys

from micropython import const

from pnn_protocol.framing import FrameDecoder, frame_into, frame_len

RX_CHUNK = const(2048)
# Linux termios values the unix port's termios module does not export
_CS8 = const(0x30)
_PARENB = const(0x100)
_VMIN = const(6)
_VTIME = const(5)


class PortClosed(OSError):
    """The peer hung up (pty master closed): nothing more will arrive."""


class PtyPort:
    """A tty device path on the unix port, in raw mode, read without blocking past available bytes.

    Args:
        path: e.g. /dev/pts/5 (the slave side of a pty the host opened).
    """

    def __init__(self, path: str) -> None:
        import termios

        self.f = open(path, "r+b")
        fd = self.f.fileno()
        # Raw mode by hand, TCSANOW: termios.setraw() flushes input, losing what the host sent early.
        # VMIN = VTIME = 0: read() returns what is there (maybe nothing); poll() does the waiting.
        attr = termios.tcgetattr(fd)
        attr[0] = 0  # iflag: no CR/NL mapping, no XON/XOFF, no parity marks
        attr[1] = 0  # oflag: no output processing
        attr[2] = (attr[2] & ~_PARENB) | _CS8  # cflag: 8 data bits, no parity
        attr[3] = 0  # lflag: no echo, no canonical mode, no signals (0x03 is data)
        attr[6][_VMIN] = 0
        attr[6][_VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, attr)
        self.poller = select.poll()
        self.poller.register(self.f, select.POLLIN)

    def readinto(self, buf) -> int:
        while True:
            for _obj, ev in self.poller.poll(-1):
                if ev & select.POLLIN:
                    n = self.f.readinto(buf)
                    if n:
                        return n
                if ev & (select.POLLHUP | select.POLLERR):
                    raise PortClosed("serial peer hung up")

    def write(self, data) -> None:
        self.f.write(data)

    def close(self) -> None:
        self.f.close()


class StdioPort:
    """The board's USB serial (the REPL's stdin/stdout) as a binary port.

    Disables Ctrl-C (micropython.kbd_intr(-1)) so a 0x03 byte in a frame is data; close() restores it,
    which is how the REPL request hands the board back to a flasher.
    """

    def __init__(self) -> None:
        import micropython

        self._mp = micropython
        micropython.kbd_intr(-1)
        self.rd = sys.stdin.buffer
        self.wr = sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)

    def readinto(self, buf) -> int:
        # stdin on boards has no "read what is there": take bytes one by one while poll says ready
        self.poller.poll(-1)
        n = 0
        cap = len(buf)
        while n < cap and self.poller.poll(0):
            b = self.rd.read(1)
            if not b:
                break
            buf[n] = b[0]
            n += 1
        return n

    def write(self, data) -> None:
        self.wr.write(data)

    def close(self) -> None:
        self._mp.kbd_intr(3)


def serve(port, loop) -> str:
    """Serve frames from `port` with `loop` (a DeviceLoop) until it asks to stop.

    Returns:
        loop.action that ended serving ("repl" or "hard_reset").

    Raises:
        PortClosed (or OSError): the link is gone.
    """
    # Replies are framed into the decoder's own buffer, free between frames (+2 for the delimiters).
    dec = FrameDecoder(loop.max_frame, 2)
    rx = bytearray(RX_CHUNK)
    out = dec.buf
    out_mv = memoryview(out)
    assert len(out) >= frame_len(loop.payload_max) + 2
    while True:
        n = port.readinto(rx)
        for ev in dec.feed(rx, n):
            if isinstance(ev, int):
                buf, start, k = loop.frame_error(ev)
            else:
                buf, start, k = loop.handle(ev)
            port.write(out_mv[: frame_into(buf, k, out, start)])
            if loop.action:
                return loop.action
