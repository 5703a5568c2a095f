"""`pnn flash` against a real MicroPython: the unix port's REPL on a pty stands in for a board.

The interpreter runs with its stdio on a pty (joined to a second pty by conftest's PtyCable, so the host
opens a path as it would /dev/ttyACM0), in a folder that is the board's filesystem, with `lib` on its
path as on a board. mpremote really enters its raw REPL, really writes the files, and the copied
firmware really starts and answers HELLO; a second flash really sends the REPL request first.
Boards with a DAC cannot be had here, so the board check against ESP32/RP2040 boards is tested on the
`sys.implementation._machine` strings those ports report.
"""

from __future__ import annotations

import json
import os
import subprocess
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PtyCable, Ran  # noqa: F401 - Ran is re-exported for the hardware CLI tests

from pnn.boards import flash
from pnn.boards.knock import knock

ROOT = Path(__file__).resolve().parents[1]
SIM_BOARD = ROOT / "firmware" / "boards" / "sim.json"


@dataclass
class ReplBoard:
    """A bare MicroPython REPL on a pty: `path` is the port to open, `root` its filesystem."""

    path: str
    root: Path
    proc: subprocess.Popen

    def files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}


@pytest.fixture
def repl_board(tmp_path: Path) -> Iterator[ReplBoard]:
    """MicroPython's unix port at its REPL on a pty, as an unflashed board is."""
    root = tmp_path / "board"
    root.mkdir()
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)  # the REPL restores this mode while running code: binary frames pass unchanged
    env = dict(os.environ, MICROPYPATH=":lib")  # '' and lib/, like a board's sys.path
    proc = subprocess.Popen(["micropython", "-X", "heapsize=512k"], stdin=slave, stdout=slave, stderr=slave,
                            cwd=root, env=env)  # fmt: skip
    os.close(slave)
    cable = PtyCable(master)
    yield ReplBoard(cable.host_path, root, proc)
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    cable.close()
    os.close(master)


@pytest.fixture
def cli(run_cli):
    """`pnn ARGS` in this process (the conftest run_cli fixture, under the name these tests use)."""
    return run_cli


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- the plan and --dry-run ----------------------------------------------------------------------


def test_plan_copies_every_firmware_and_protocol_module_and_the_board_file():
    files = flash.plan(flash.board_file("esp32"))
    dst = [c.dst for c in files]
    assert len(set(dst)) == len(dst)
    expected = {f"lib/{p.relative_to(ROOT / 'firmware').as_posix()}" for p in (ROOT / "firmware" / "pnn_fw").rglob("*.py")}
    expected |= {f"lib/{p.relative_to(ROOT / 'protocol').as_posix()}" for p in (ROOT / "protocol" / "pnn_protocol").rglob("*.py")}
    assert set(dst) == expected | {"board.json", "main.py"}
    assert dst[-1] == "main.py"  # last: a half-copied board never starts half a firmware
    assert all(c.src.is_file() and "__pycache__" not in c.src.parts for c in files)
    assert next(c.src for c in files if c.dst == "board.json") == ROOT / "firmware" / "boards" / "esp32.json"
    assert flash.folders(files) == ["lib", "lib/pnn_fw", "lib/pnn_fw/hal", "lib/pnn_protocol"]


def test_dry_run_lists_each_file_and_destination_and_opens_nothing(cli, tmp_path):
    port = tmp_path / "ttyACM9"  # does not exist: a dry run must not even open it
    board = tmp_path / "my-esp32.json"
    board.write_text(json.dumps({**json.loads((ROOT / "firmware/boards/esp32.json").read_text()), "pins": {"dac": 25, "adc": 35}}))
    secrets = tmp_path / "secrets.json"
    secrets.write_text("{}")
    r = cli("flash", str(port), "--board", str(board), "--secrets", str(secrets), "--dry-run")
    assert r.returncode == 0, r.stderr
    for c in flash.plan(board, secrets):
        assert f"  {c}\n" in r.stdout
    assert "  firmware/pnn_fw/loop.py -> :lib/pnn_fw/loop.py\n" in r.stdout
    assert "  protocol/pnn_protocol/framing.py -> :lib/pnn_protocol/framing.py\n" in r.stdout
    assert f"  {board} -> :board.json\n" in r.stdout and f"  {secrets} -> :secrets.json\n" in r.stdout
    assert r.stdout.rstrip().splitlines()[-2] == "  firmware/main.py -> :main.py"
    assert "nothing is touched" in r.stdout and not port.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--board", "esp33"], "unknown board 'esp33'; choose one of esp32, pico_w, rp2040, rp2040_mcp4725, sim"),
        (["--board", "/nowhere/board.json"], "no board file /nowhere/board.json"),
        (["--board", "esp32", "--secrets", "/nowhere/secrets.json"], "no secrets file /nowhere/secrets.json"),
        ([], "the following arguments are required: --board"),
    ],
)
def test_bad_flash_arguments_are_one_line(cli, args, expected):
    r = cli("flash", "/dev/ttyUSB0", *args, "--dry-run")
    assert r.returncode == 2 and expected in one_line(r.stderr)


# -- the board check -----------------------------------------------------------------------------

PICO = ("rp2", "Raspberry Pi Pico with RP2040")
PICO_W = ("rp2", "Raspberry Pi Pico W with RP2040")
PICO_2 = ("rp2", "Raspberry Pi Pico2 with RP2350")
ESP32 = ("esp32", "Generic ESP32 module with ESP32")
ESP32_SPIRAM = ("esp32", "Generic ESP32 module with SPIRAM with ESP32")
ESP32_S3 = ("esp32", "Generic ESP32S3 module with ESP32S3")
ESP32_C3 = ("esp32", "ESP32C3 module with ESP32C3")
UNIX = ("linux", "linux [GCC 14.2.1] version")


@pytest.mark.parametrize(
    ("board", "found", "refusal"),
    [
        ("esp32", ESP32, None),
        ("esp32", ESP32_SPIRAM, None),
        ("esp32", ESP32_S3, "lacks"),
        ("esp32", ESP32_C3, "lacks"),
        ("esp32", PICO, "is for an ESP32"),
        ("rp2040", PICO, None),
        ("rp2040", PICO_W, "use --board pico_w"),
        ("rp2040_mcp4725", PICO, None),
        ("rp2040_mcp4725", PICO_W, "use --board pico_w"),
        ("rp2040", PICO_2, "is for an RP2040"),
        ("rp2040", ESP32, "is for an RP2040"),
        ("pico_w", PICO_W, None),
        ("pico_w", PICO, "use --board rp2040"),
        ("sim", UNIX, None),
        ("sim", ESP32, "simulated board for MicroPython's unix port"),
        ("esp32", UNIX, "flash it with --board sim"),
    ],
)
def test_board_check_on_the_machine_strings_ports_report(board, found, refusal):
    config = flash.read_board(flash.board_file(board))
    if refusal is None:
        flash.check_board(config, *found)
        return
    with pytest.raises(flash.FlashError, match=refusal) as e:
        flash.check_board(config, *found)
    assert repr(found[1]) in str(e.value)  # the message names the board it found


# -- against the real interpreter ----------------------------------------------------------------


def test_knock_tells_a_bare_repl_from_pnn_firmware(repl_board, firmware_serial):
    assert knock(repl_board.path).kind == "repl"
    fw = firmware_serial(cable=True)
    k = knock(fw.host_path)
    assert k.kind == "pnn" and k.reply["device"] == "sim-0" and k.reply["proto"] == 1
    assert "pnn firmware" in k.describe()


def test_flash_refuses_a_board_file_for_another_board_and_copies_nothing(cli, repl_board):
    r = cli("flash", repl_board.path, "--board", "esp32")
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert "'linux" in line and "flash it with --board sim" in line
    assert repl_board.files() == set()


def test_flash_copies_the_firmware_which_starts_and_a_second_flash_gets_back_in(cli, repl_board, tmp_path):
    r = cli("flash", repl_board.path, "--board", "sim")
    assert r.returncode == 0, r.stderr + r.stdout
    plan = flash.plan(SIM_BOARD)
    # and the file the started firmware keeps its boot counter in (firmware/main.py BOOT_COUNTER)
    assert repl_board.files() == {c.dst for c in plan} | {"boot_count"}
    for c in plan:
        assert (repl_board.root / c.dst).read_bytes() == c.src.read_bytes(), c.dst
    assert "fits sim.json" in r.stdout and "sim-0" in r.stdout and "answers HELLO" in r.stdout
    running = knock(repl_board.path)
    assert running.kind == "pnn" and running.reply["board"] == "sim"

    # Re-flash a running board with another board file: the REPL request must get mpremote back in.
    board = tmp_path / "sim-7.json"
    board.write_text(json.dumps({**json.loads(SIM_BOARD.read_text()), "id": "sim-7", "mqtt": {}}))
    r = cli("flash", repl_board.path, "--board", str(board))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "asking it to leave the binary protocol" in r.stdout
    assert json.loads((repl_board.root / "board.json").read_text())["id"] == "sim-7"
    assert knock(repl_board.path).reply["device"] == "sim-7"


def test_flash_no_reset_leaves_the_board_at_the_repl(cli, repl_board):
    r = cli("flash", repl_board.path, "--board", "sim", "--no-reset")
    assert r.returncode == 0, r.stderr
    assert "main.py" in repl_board.files() and "stays at the REPL" in r.stdout
    assert knock(repl_board.path).kind == "repl"


def test_a_firmware_that_fails_to_start_is_reported_with_its_error(cli, repl_board, tmp_path):
    board = tmp_path / "broken.json"
    board.write_text(json.dumps({**json.loads(SIM_BOARD.read_text()), "dac_bits": 99}))
    r = cli("flash", repl_board.path, "--board", str(board))
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert "the firmware did not start" in line and "dac_bits" in line and "mpremote connect" in line


def test_flash_on_a_silent_port_says_nothing_answers(cli):
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        r = cli("flash", os.ttyname(slave), "--board", "esp32")
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert "nothing answers on /dev/pts/" in line and "MicroPython" in line


def test_flash_on_a_missing_port_names_it(cli, tmp_path):
    r = cli("flash", str(tmp_path / "ttyUSB7"), "--board", "esp32")
    assert r.returncode == 2
    assert f"no serial port {tmp_path / 'ttyUSB7'}" in one_line(r.stderr)
