"""firmware/main.py, the board entry point, run by real MicroPython with its USB-serial transport
(StdioPort: stdin/stdout, Ctrl-C disabled) on pipes: serves frames, then the REPL request ends it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

from pnn_protocol import FrameDecoder, frame, messages, packb, unpackb

ROOT = Path(__file__).resolve().parents[1]


def test_main_serves_stdio_until_repl(tmp_path):
    shutil.copy(ROOT / "firmware" / "boards" / "sim.json", tmp_path / "board.json")
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:{ROOT / 'protocol'}")
    drive = struct.pack("<64H", *([3] * 64))  # 0x03 bytes: data, not Ctrl-C
    wire = b"".join(
        frame(packb(m))
        for m in (messages.hello_request(1), messages.run(2, drive, 1, 64, 20000, n_out=4), messages.repl(3))
    )
    r = subprocess.run(["micropython", "-X", "heapsize=256k", str(ROOT / "firmware" / "main.py")], input=wire,
                       capture_output=True, env=env, cwd=tmp_path, timeout=30)  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    replies = [unpackb(bytes(ev)) for ev in FrameDecoder(20000).feed(r.stdout)]
    assert [(m["t"], m["id"]) for m in replies] == [("hello", 1), ("result", 2), ("repl", 3)]
    assert len(replies[1]["resp"]) == 8
    assert b"REPL ready" in r.stderr
