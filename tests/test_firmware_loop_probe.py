"""`python -m pnn.boards.probe URL` against the firmware under MicroPython: over a pty cable, over MQTT,
and one clear line with exit status 2 for a bad URL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pnn.boards import probe as probe_mod


def probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pnn.boards.probe", *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_probe_serial(firmware_serial):
    sim = firmware_serial(seed=4, cable=True)
    r = probe(f"serial://{sim.host_path}?n_in=256&n_out=16&rate=20000")
    assert r.returncode == 0, r.stderr
    assert "device sim-0  board sim" in r.stdout
    assert "RUN 1 x 256 samples -> 16 bins at 20000 S/s" in r.stdout
    assert "round trip" in r.stdout and "firmware" in r.stdout


def test_probe_mqtt(mosquitto, firmware_mqtt, capsys):
    sim = firmware_mqtt(mosquitto, "probe-me")
    assert probe_mod.main([f"mqtt://{sim.host}:{sim.port}/probe-me"]) == 0
    out = capsys.readouterr().out
    assert "device probe-me  board sim" in out and "round trip" in out


def test_probe_no_answer(mosquitto, capsys):
    assert probe_mod.main([f"mqtt://{mosquitto[0]}:{mosquitto[1]}/nobody", "--timeout", "0.3"]) == 1
    assert "no reply" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["ttyACM0", "http://x/y", "serial://dev/ttyACM0", "mqtt://127.0.0.1:1883", "sim://electronic",
            "mqtt://127.0.0.1:99999/x", "serial:///dev/ttyACM0?speed=3"],
)  # fmt: skip
def test_probe_bad_url(url, capsys):
    assert probe_mod.main([url]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "serial:///dev/ttyACM0" in lines[0] and "mqtt://host:port/<device-id>" in lines[0]
