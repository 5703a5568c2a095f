"""Bench-side friction: sim-board URLs work in `pnn devices`, simulated units differ by seed, their
temporary folders go, a dropped port is one line, and misspellings get a suggestion."""

from __future__ import annotations

import json
import os
import threading
import time
import tty
from pathlib import Path

import pytest


def test_devices_takes_the_url_sim_board_prints_and_units_differ_by_seed(run_cli):
    from pnn.boards.simboard import SimBoard

    with SimBoard(seed=5) as five, SimBoard(seed=6) as six:
        folders = [five.folder, six.folder]
        assert all(f.is_dir() for f in folders)
        result = run_cli("devices", five.url, "--serial", six.url, "--no-scan", "--json")
        assert result.returncode == 0, result.stderr
        rows = {r["url"]: r for r in json.loads(result.stdout)}
        assert rows[five.url]["status"] == "online" and rows[five.url]["device"] == "sim-5"
        assert rows[six.url]["device"] == "sim-6"  # two units, two ids: two calibration files
    assert not any(f.exists() for f in folders)  # pnn-sim-* folders go with a clean stop


def test_a_port_that_drops_while_flashing_is_one_line(run_cli):
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)

    def unplug() -> None:
        os.read(master, 1)  # pnn flash has opened the port and sent HELLO: pull the cable now
        time.sleep(0.05)
        os.close(master)

    t = threading.Thread(target=unplug)
    t.start()
    try:
        result = run_cli("flash", path, "--board", "esp32")
    finally:
        t.join()
        os.close(slave)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and f"{path} went away" in lines[0]


@pytest.mark.parametrize(("argv", "suggestion"), [(["deom"], "did you mean 'demo'"),
                                                  (["demo", "--sead", "1"], "did you mean '--seed'"),
                                                  (["demo", "--system", "optcal"], "did you mean 'optical'")])
def test_misspellings_get_a_suggestion(run_cli, argv, suggestion):
    result = run_cli(*argv)
    assert result.returncode == 2
    assert suggestion in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_version(run_cli):
    from pnn import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and f"pnn {__version__}" in result.stdout


def test_sim_board_keeps_its_folder_when_the_firmware_fails(tmp_path):
    from pnn.boards.simboard import SimBoard

    board = SimBoard(seed=7)
    board.proc.kill()
    board.proc.wait()
    board.close()
    assert board.failed and board.folder.exists() and (board.folder / "firmware.log").exists()
    import shutil

    shutil.rmtree(board.folder)
    assert not Path(board.folder).exists()
