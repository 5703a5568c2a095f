"""The emulated Pico for the tests: the real MicroPython rp2 firmware in rp2040js (../shared/rp2040-emu),
with firmware/emu/electronic.mjs wired between GP15 (PWM) and ADC0, its console on a pty.

`boot(folder)` copies the kit to `folder` and runs `npm ci` there (never in the project), writes one unit
of pnn.physics.Electronic for the plugin, starts pty_bridge.py and waits for USB enumeration. Tests that
need it call `require()` first: without the kit (a user's own checkout) they skip with one line; with it
(CI) a missing Node.js is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT.parent / "shared" / "rp2040-emu"
PLUGIN = ROOT / "firmware" / "emu" / "electronic.mjs"
sys.path.insert(0, str(ROOT / "firmware" / "emu"))
import circuit_table  # noqa: E402

UNIT_SEED = 0


def circuit_bins(table: dict, codes: np.ndarray, settle: int, rate: int, n_out: int) -> tuple[np.ndarray, float]:
    """What the plugin's unit gives for 8-bit PWM codes [batch, n_drive] after `settle` rest ticks:
    (ADC codes per bin from pnn.physics.Electronic without noise, the readout noise of one bin in codes).
    The PWM level is the compare value duty_u16(code * 257) programs: round(code * 257 / 256) / 256."""
    from pnn.physics import Electronic, Noise

    quiet = Noise(additive=0.0, multiplicative=0.0, drift=0.0, dac_bits=None, adc_bits=None, variation=1.0)
    batch, n_drive = codes.shape
    model = Electronic(settle + n_drive, seed=UNIT_SEED, noise=quiet, sample_rate=rate)
    full = np.concatenate([np.zeros((batch, settle)), np.floor(codes * 257 / 256 + 0.5)], axis=1)
    vout = model.waveform(3.3 * full / 256)[:, settle:]
    adc = table["adc"]
    want = (vout * adc["gain"] / adc["vref"] * 4095).reshape(batch, n_out, -1).mean(-1)
    return want, table["noise_v"] / adc["vref"] * 4095 / np.sqrt(n_drive // n_out)


def require() -> None:
    """Skip (no kit) or fail (kit but no Node.js) before anything is started."""
    if not (KIT / "rp2emu.mjs").exists():
        pytest.skip(f"needs the emulated Pico kit at {KIT} (../shared/rp2040-emu) and Node.js >= 18")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the emulated Pico kit is here but node/npm are not: apt-get install -y nodejs npm")


def require_node() -> None:
    """For tests that need Node.js alone (the plugin's circuit): skip without it, unless the kit is here
    (CI), where a missing Node.js is an error."""
    if shutil.which("node") is None:
        if (KIT / "rp2emu.mjs").exists():
            pytest.fail("the emulated Pico kit is here but node is not: apt-get install -y nodejs npm")
        pytest.skip("needs Node.js (`node`) for firmware/emu")


@dataclass
class Emu:
    """A running emulated Pico: its pty, control socket, ADC conversion log and the unit it models."""

    tty: str
    sock: Path
    adc_log: Path
    table: dict
    proc: subprocess.Popen
    log: Path
    _ctl: socket.socket | None = field(default=None, repr=False)

    def ctl(self, cmd: str, **kw: object) -> dict:
        """One control-socket command (rp2emu.mjs: time, adc, gpio, trace_start/get, stats ...)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.sock))
            s.sendall((json.dumps(dict(cmd=cmd, **kw)) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def conversions(self) -> list[int]:
        """Emulated-ns start times of every ADC0 conversion so far (the plugin's log; 100 ms flush)."""
        time.sleep(0.3)
        if not self.adc_log.exists():
            return []
        return [int(x) for x in self.adc_log.read_text().split()]

    def wait_ready(self, since: int = 0, timeout: float = 300.0) -> None:
        """Until the emulator (restarted after a reset, too) has enumerated USB `since` log bytes on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"USB CDC enumerated" in self.log.read_bytes()[since:] and self.sock.exists():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited: " + self.log.read_text()[-2000:])
            time.sleep(0.1)
        raise TimeoutError("emulator did not enumerate USB: " + self.log.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def boot(folder: Path, extra: tuple[str, ...] = ()) -> Emu:
    """Copy the kit into folder, npm ci there, start the emulated Pico with the circuit plugin."""
    require()
    kit = folder / "kit"
    shutil.copytree(KIT, kit, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=kit, check=True, capture_output=True, timeout=600)
    table_path = circuit_table.write(folder / "unit.json", UNIT_SEED)
    run = folder / "run"
    run.mkdir()
    tty, sock, adc_log, log = run / "ttyEMU", run / "emu.sock", run / "adc.log", run / "bridge.log"
    cmd = [sys.executable, str(kit / "pty_bridge.py"), "--link", str(tty), "--",
           "node", str(kit / "rp2emu.mjs"), "--image", str(kit / "firmware.uf2"), "--ctrl", str(sock),
           "--plugin", str(PLUGIN), "--circuit", str(table_path), "--adc-log", str(adc_log), *extra]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    emu = Emu(str(tty), sock, adc_log, json.loads(table_path.read_text()), proc, log)
    try:
        emu.wait_ready()
    except BaseException:
        emu.stop()
        raise
    return emu


def experiment_toml(tty: str) -> str:
    """A short `pnn train` against the emulated Pico: the shipped vowels (7 classes, chance 14 %), one
    electronic layer of 12 drive samples and 12 bins, a twin from 300 measured drives, 4 epochs of PAT.
    About 1,400 examples through the board: a minute or two of the emulator's wall time."""
    url = f"serial://{tty}?n_in=12&n_out=12&rate=5000&settle=8&timeout=60&heartbeat=0"
    return f"""[experiment]
name = "emulated-pico-vowels"
[task]
name = "vowels"
[system]
url = "{url}"
n_in = 12
n_out = 12
[twin]
samples = 300
epochs = 60
[train]
trainers = ["pat"]
depth = 1
epochs = 4
batch_size = 16
"""
