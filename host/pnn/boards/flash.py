"""`pnn flash`: put the pnn firmware and a board file on a MicroPython board with mpremote.

The steps, each a function so the CLI can show progress and tests can run them one by one:

1. `knock(port)`: what answers on the port? A HELLO frame goes out first; pnn firmware answers it (and
   says its board, firmware and protocol versions). If nothing frames back, a CR + Ctrl-C goes out and a
   bare MicroPython REPL answers with its `>>>` prompt. Silence or other bytes are reported as such.
2. `leave_protocol(port)`: a board that runs our firmware has Ctrl-C switched off (0x03 is data in
   frames), so mpremote could not break in; the protocol's REPL request makes it return to the REPL
   (protocol/SPEC.md "REPL", HARDWARE_NOTES "Traps").
3. `identify(port)` + `check_board(board, platform, machine)`: `sys.platform` and
   `sys.implementation._machine` of the connected board against the board file; a mismatch is refused
   before anything is copied (an esp32.json on an ESP32-S3 would drive a DAC that chip does not have).
4. `copy(port, plan(board_file))`: main.py, lib/pnn_fw/**, lib/pnn_protocol/** and board.json (+ an
   optional secrets.json) in one mpremote session.
5. `restart(port, platform)`: a hard reset on a board; on MicroPython's unix port (the "sim" board, which
   has no reset) main.py is run afresh in the same process instead.

mpremote runs as a subprocess (`python -m mpremote`), always with `resume`: its automatic soft reset
would end the unix port, and a board does not need it (the REPL request already left main.py).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pnn_protocol import FrameDecoder, errors, frame, messages, packb, unpackb

from ..link.errors import PortNotFound, UserError

ROOT = Path(__file__).resolve().parents[3]
FIRMWARE = ROOT / "firmware"
PROTOCOL = ROOT / "protocol" / "pnn_protocol"
BOARDS = FIRMWARE / "boards"
UNIX_PLATFORMS = ("linux", "darwin")  # sys.platform of MicroPython's unix port
MPREMOTE_TIMEOUT_S = 120.0  # copying: ~80 KB, a few seconds over USB, far more over a slow UART
QUICK_TIMEOUT_S = 20.0  # one short exec: mpremote itself gives up entering the raw REPL after 10 s
# The wait for HELLO after a reset (boot_allowance): BOOT_MARGIN x the measured boot work, plus the few
# seconds a real board's USB port takes to vanish and come back, which nothing before the reset measures.
BOOT_MARGIN = 3.0
BOOT_FLOOR_S = 5.0


class FlashError(UserError, ValueError):
    """Flashing cannot go on; the message says what to do (the CLI prints it as one line)."""


class NoAnswer(UserError, ConnectionError):
    """Nothing usable answered on the port; the message says what to check."""


@dataclass(frozen=True)
class Copy:
    """One file to put on the board: `src` on this computer -> `dst` on the board (relative to /)."""

    src: Path
    dst: str

    def __str__(self) -> str:
        """`src -> :dst`, src relative to the checkout when it lies in it (as a user types it)."""
        src = self.src.resolve()
        shown = src.relative_to(ROOT) if src.is_relative_to(ROOT) else self.src
        return f"{shown} -> :{self.dst}"


@dataclass
class Knock:
    """What answered on a serial port.

    Attributes:
        kind: "pnn" (our firmware, same protocol), "version" (pnn firmware of another protocol
            version), "repl" (a MicroPython REPL), "garbage" (bytes that are neither), "silent".
        reply: the decoded reply to HELLO, when a frame came back.
        raw: every byte read (for messages: a REPL's traceback, say).
        seconds: how long the answer took from the HELLO going out (a measured round trip for "pnn").
    """

    kind: str
    reply: dict[str, Any] = field(default_factory=dict)
    raw: bytes = b""
    seconds: float = 0.0

    def describe(self) -> str:
        """One phrase for messages: who answered."""
        r = self.reply
        if self.kind == "pnn":
            return f"pnn firmware {r.get('fw')!s} (board {r.get('board')!s}, device {r.get('device')!s})"
        if self.kind == "version" and r.get("t") == messages.ERROR:
            return f"pnn firmware of another protocol version ({r.get('msg')!s}; this host speaks {messages.VERSION})"
        if self.kind == "version":
            return f"pnn firmware speaking protocol {protocol_of(r)!s} (this host speaks {messages.VERSION})"
        return {"repl": "a MicroPython REPL", "garbage": "bytes that are neither pnn frames nor a REPL",
                "silent": "nothing"}[self.kind]  # fmt: skip


def protocol_of(reply: dict[str, Any]) -> Any:
    """The protocol version a reply claims: HELLO's `proto`, else its envelope `v`."""
    return reply.get("proto", reply.get("v"))


# -- board files and the copy plan -------------------------------------------------------------


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS.glob("*.json"))


def board_file(name: str) -> Path:
    """firmware/boards/<name>.json, or `name` itself when it is a path to a board file (a copy with other pins).

    Raises:
        FlashError: neither exists (the message lists the board names).
    """
    path = Path(name)
    if path.suffix == ".json" or os.sep in name:
        if not path.is_file():
            raise FlashError(f"no board file {name}; give a board name ({', '.join(board_names())}) "
                             "or the path of a copy of one of firmware/boards/*.json")  # fmt: skip
        return path
    if not FIRMWARE.is_dir():
        raise FlashError(f"the firmware sources are not at {FIRMWARE}: run pnn flash from a source checkout "
                         "(pip install -e .)")  # fmt: skip
    path = BOARDS / f"{name}.json"
    if not path.is_file():
        raise FlashError(f"unknown board {name!r}; choose one of {', '.join(board_names())} "
                         "or give the path of your own board file")  # fmt: skip
    return path


def read_board(path: Path) -> dict[str, Any]:
    """The board file as a dict; FlashError (naming the file) when it is not a JSON object with "board"/"hal"."""
    try:
        board = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise FlashError(f"{path} is not a readable JSON board file: {e}") from None
    if not isinstance(board, dict) or not isinstance(board.get("hal"), str):
        raise FlashError(f'{path} needs a JSON object with "board" and "hal" keys, like firmware/boards/esp32.json')
    return board


def _tree(src: Path, dst: str) -> list[Copy]:
    """The .py files under src (no caches), to dst/<relative path>."""
    files = sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)
    return [Copy(p, f"{dst}/{p.relative_to(src).as_posix()}") for p in files]


def plan(board: Path, secrets: Path | None = None) -> list[Copy]:
    """Every file `pnn flash` puts on the board, in copy order (main.py last: a half-flashed board
    that resets then has no main.py and stays at the REPL, instead of failing to import)."""
    files = _tree(FIRMWARE / "pnn_fw", "lib/pnn_fw") + _tree(PROTOCOL, "lib/pnn_protocol")
    files.append(Copy(board, "board.json"))
    if secrets is not None:
        if not secrets.is_file():
            raise FlashError(f"no secrets file {secrets}; write one as firmware/README.md shows, or leave out --secrets")
        files.append(Copy(secrets, "secrets.json"))
    files.append(Copy(FIRMWARE / "main.py", "main.py"))
    return files


def folders(files: list[Copy]) -> list[str]:
    """The board folders the plan needs, parents first."""
    out: list[str] = []
    for c in files:
        parts = c.dst.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in out:
                out.append(d)
    return out


# -- what the board is -------------------------------------------------------------------------


def _mcu(machine: str) -> str:
    """The chip of `sys.implementation._machine` ("<board> with <MCU>"), upper case without dashes."""
    return machine.rsplit(" with ", 1)[-1].strip().upper().replace("-", "").replace("_", "")


def check_board(board: dict[str, Any], platform: str, machine: str) -> None:
    """Refuse a board file that does not fit the connected board.

    Args:
        board: the board file (its "board", "hal" and "pins" keys are looked at).
        platform, machine: `sys.platform` and `sys.implementation._machine` of the connected board.

    Raises:
        FlashError: one line naming the board found, what the file needs, and which file to use instead.
    """
    name, hal = str(board.get("board", "")), board.get("hal")
    found = f"the connected board is {machine!r} (sys.platform {platform!r})"
    mcu = _mcu(machine)
    if hal == "sim":
        if platform not in UNIX_PLATFORMS:
            raise FlashError(f"{found}, but {name}.json is the simulated board for MicroPython's unix port; "
                             f"choose a board file for it: {', '.join(n for n in board_names() if n != 'sim')}")
        return
    if platform in UNIX_PLATFORMS:
        raise FlashError(f"{found}: MicroPython's unix port has no DAC or ADC; flash it with --board sim")
    if hal == "esp32":
        if platform != "esp32" or not mcu.startswith("ESP32"):
            raise FlashError(f"{found}, but {name}.json is for an ESP32; choose the board file for this board")
        if re.match(r"ESP32(S2|S3|C\d|H\d|P\d)", mcu):
            raise FlashError(f"{found}, but {name}.json needs the classic ESP32's DAC on GPIO25/26, which this "
                             "chip lacks; use an ESP32 (WROOM/WROVER) board, or an RP2040 with rp2040_mcp4725")
        return
    if hal == "rp2040":
        if platform != "rp2" or "RP2040" not in mcu:
            raise FlashError(f"{found}, but {name}.json is for an RP2040 (Raspberry Pi Pico); "
                             "choose the board file for this board")  # fmt: skip
        pico_w = re.search(r"\bPICO W\b", machine.upper()) is not None
        smps = (board.get("pins") or {}).get("smps", 23)
        if pico_w and smps is not None:
            raise FlashError(f"{found}, but {name}.json drives GP23 (the plain Pico's SMPS pin), which is the "
                             "Pico W's radio power line; use --board pico_w")
        if name == "pico_w" and not pico_w:
            raise FlashError(f"{found}, but pico_w.json is for the Pico W (Wi-Fi); use --board rp2040")
        return
    raise FlashError(f'{name}.json names hal {hal!r}; pnn firmware has HALs "esp32", "rp2040" and "sim"')


# -- talking to the port -----------------------------------------------------------------------


def open_port(port: str) -> Any:
    """pyserial, raw and non-blocking; PortNotFound or NoAnswer saying how to mend a missing or forbidden port."""
    import serial

    try:
        return serial.Serial(port, 115200, timeout=0)
    except (OSError, serial.SerialException) as e:
        code = getattr(e, "errno", None)  # (pyserial's SerialException carries the OS errno)
        if code == errno.ENOENT:
            raise PortNotFound(f"no serial port {port}: check the name (`pnn devices` lists the boards it finds; "
                               "on Linux usually /dev/ttyUSB0 or /dev/ttyACM0) and the USB cable") from None
        if code == errno.EACCES:
            raise NoAnswer(f"no permission to open {port}: on Linux run `sudo usermod -aG dialout $USER` "
                           "and log in again") from None
        raise NoAnswer(f"cannot open {port}: {e} (is another program, e.g. a serial monitor, using it?)") from None


def _read(ser: Any, seconds: float, until: Callable[[bytes], bool]) -> bytes:
    """Bytes from `ser` until `until(bytes so far)` or `seconds` pass."""
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until(data):
        chunk = ser.read(4096)
        if chunk:
            data += chunk
        else:
            time.sleep(0.005)
    return data


def _frames(data: bytes) -> list[dict[str, Any]]:
    """The msgpack maps framed in `data` (garbage between them is skipped)."""
    out = []
    for ev in FrameDecoder(1 << 20).feed(data):
        if isinstance(ev, int):
            continue
        try:
            msg = unpackb(bytes(ev))
        except Exception:  # noqa: BLE001 - a frame that is not our msgpack is garbage, whatever the decoder says
            continue
        if isinstance(msg, dict):
            out.append(msg)
    return out


def _is_repl(data: bytes) -> bool:
    return b">>>" in data or b"raw REPL" in data or b"Traceback" in data or data.rstrip().endswith(b"\n>")


def knock(port: str, timeout: float = 1.0, interrupt: bool = True) -> Knock:
    """Find out what answers on `port`: pnn firmware, a MicroPython REPL, or nothing.

    Args:
        port: the serial port path (or COMn).
        timeout: seconds to wait for each answer (HELLO, then the REPL prompt).
        interrupt: send Ctrl-C before looking for a REPL prompt, to stop a program the board runs.
            Not while our firmware may still be starting: before it switches Ctrl-C off, that
            would stop it.

    Raises:
        NoAnswer: the port cannot be opened (missing, no permission, busy).
    """
    ser = open_port(port)
    try:
        ser.write(b"\x00" + frame(packb(messages.hello_request(1))))
        t0 = time.monotonic()
        raw = _read(ser, timeout, lambda d: _firmware(d) is not None)
        found = _firmware(raw)
        if found is None:  # not our firmware (or not yet): a REPL prints a prompt after CR
            ser.write(b"\r\x03" if interrupt else b"\r")
            raw += _read(ser, timeout, lambda d: _is_repl(d) or _firmware(d) is not None)
            found = _firmware(raw)  # a late HELLO: the firmware was still starting
        if found is not None:
            return dataclasses.replace(found, seconds=time.monotonic() - t0)
        if _is_repl(raw):
            return Knock("repl", {}, raw)
        return Knock("garbage" if raw else "silent", {}, raw)
    finally:
        ser.close()


def _firmware(raw: bytes) -> Knock | None:
    """A Knock of kind "pnn" or "version" when `raw` holds a reply that says who is there."""
    answer = _answer(_frames(raw))
    if answer is None:
        return None
    ok = answer.get("t") == messages.HELLO and answer.get("v") == protocol_of(answer) == messages.VERSION
    return Knock("pnn" if ok else "version", answer, raw)


def _answer(replies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The reply that says who is there: a HELLO, or an ERROR about the protocol version (other
    ERRORs, e.g. about bytes left over from an earlier knock, say nothing about the board)."""
    for r in replies:
        if r.get("t") == messages.HELLO or r.get("v") != messages.VERSION:
            return r
        if r.get("t") == messages.ERROR and r.get("code") == errors.BAD_VERSION:
            return r
    return None


def leave_protocol(port: str, timeout: float = 2.0) -> bool:
    """Send the REPL request; True once the firmware acknowledged it (it is then back at the REPL)."""
    ser = open_port(port)
    try:
        ser.write(b"\x00" + frame(packb(messages.repl(2))))
        raw = _read(ser, timeout, lambda d: any(m.get("t") == messages.REPL for m in _frames(d)))
        acked = any(m.get("t") == messages.REPL for m in _frames(raw))
        if acked:  # let the board print its goodbye and prompt before mpremote opens the port
            _read(ser, 0.3, _is_repl)
        return acked
    finally:
        ser.close()


def mpremote(port: str, *args: str) -> list[str]:
    """The command line of one mpremote session on `port` (without the automatic soft reset)."""
    return [sys.executable, "-m", "mpremote", "connect", port, "resume", *args]


def _run(cmd: list[str], what: str, on_line: Callable[[str], None] | None = None, check: bool = True,
         timeout: float = MPREMOTE_TIMEOUT_S) -> str:  # fmt: skip
    """Run mpremote, streaming its stdout lines to on_line; FlashError with its last words on failure
    (check=False: return what it printed, whatever its exit status)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out: list[str] = []
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)  # a board that never answers must not hold us forever
    timer.start()
    try:
        for line in proc.stdout:
            out.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if check and proc.returncode != 0:
        if proc.returncode < 0:
            raise FlashError(f"mpremote got nowhere in {timeout:g} s while {what} (a program on the board that "
                             "ignores Ctrl-C?): reset the board, holding its boot_skip pin low if it runs pnn "
                             "firmware, and try again")  # fmt: skip
        last = next((ln.strip() for ln in reversed(out) if ln.strip()), "no output")
        raise FlashError(f"mpremote failed while {what}: {last}")
    return "".join(out)


def identify(port: str) -> tuple[str, str, float]:
    """(sys.platform, sys.implementation._machine, wall seconds the exchange took) of the board at the REPL."""
    t0 = time.monotonic()
    out = _run(mpremote(port, "exec", "import sys; print(sys.platform); print(sys.implementation._machine)"),
               "asking the board what it is", timeout=QUICK_TIMEOUT_S)  # fmt: skip
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    if len(lines) < 2:
        raise FlashError(f"the board on {port} did not say what it is (got {out.strip()!r}); is it MicroPython?")
    return lines[-2], lines[-1], time.monotonic() - t0


# Markers the board prints around compiling one copied module, so the host can time it on its own clock.
_PROBE_START, _PROBE_END = "pnn-compile-start", "pnn-compile-end"


def probe_file(files: list[Copy]) -> Copy:
    """The module whose compile time stands in for the board's: the largest firmware source copied."""
    sources = [c for c in files if c.dst.endswith(".py")]
    return max(sources, key=lambda c: c.src.stat().st_size)


def copy_command(port: str, files: list[Copy]) -> list[str]:
    """One mpremote session: make the folders (existing ones are fine), copy every file, then compile the
    largest module once between two printed markers (the board's speed at what its boot does most)."""
    mkdirs = (f"import os\nfor d in {tuple(folders(files))!r}:\n"
              " try:\n  os.mkdir(d)\n except OSError:\n  pass\n")  # fmt: skip
    args: list[str] = ["exec", mkdirs]
    for c in files:
        args += ["+", "fs", "cp", str(c.src), f":{c.dst}"]
    probe = probe_file(files).dst
    args += ["+", "exec", f"print({_PROBE_START!r})\ncompile(open({probe!r}).read(), {probe!r}, 'exec')\n"
             f"print({_PROBE_END!r})"]  # fmt: skip
    return mpremote(port, *args)


def copy(port: str, files: list[Copy], on_file: Callable[[str], None] | None = None) -> float:
    """Copy `files` to the board; on_file(dst) is called as mpremote starts on each.

    Returns the wall seconds the board took to compile `probe_file(files)` (see `boot_allowance`).
    """
    stamps: dict[str, float] = {}

    def seen(line: str) -> None:
        if line.strip() in (_PROBE_START, _PROBE_END):
            stamps[line.strip()] = time.monotonic()
        elif on_file is not None and line.startswith("cp ") and " :" in line:
            on_file(line.rsplit(" :", 1)[1])

    _run(copy_command(port, files), "copying the files", seen)
    if len(stamps) != 2:
        raise FlashError(f"the board on {port} did not compile {probe_file(files).dst} after the copy: "
                         "is the file system full? (`mpremote connect PORT df`)")  # fmt: skip
    return stamps[_PROBE_END] - stamps[_PROBE_START]


def boot_allowance(files: list[Copy], compile_s: float, answer_s: float) -> float:
    """How long to wait for HELLO after a reset, from what this board was measured to take.

    A boot is an interpreter start (a USB re-enumeration; `answer_s`, the measured round trip of one short
    mpremote exec, bounds it from what the board showed) and then main.py compiling the firmware it
    imports: the measured compile of the largest module scaled by the bytes of all copied sources (more
    than main.py imports, so it errs long). The factor covers a board (or an emulator on a busy host)
    that runs a few times slower during the boot than during the probe; the wait ends at the first HELLO.
    """
    per_byte = compile_s / max(1, probe_file(files).src.stat().st_size)
    source = sum(c.src.stat().st_size for c in files if c.dst.endswith(".py"))
    return BOOT_MARGIN * (answer_s + per_byte * source) + BOOT_FLOOR_S


# Run main.py afresh in the running interpreter, dropping the modules a previous run imported: how the
# unix port (which cannot reset) starts the firmware, and how a board that stopped at the REPL is asked
# for its error.
RUN_MAIN = (
    "import sys\n"
    "for k in list(sys.modules):\n"
    " if k == 'main' or k.startswith('pnn_fw') or k.startswith('pnn_protocol'):\n"
    "  del sys.modules[k]\n"
    "exec(open('main.py').read(), {'__name__': '__main__'})\n"
)


def restart_command(port: str, platform: str) -> list[str]:
    """A hard reset on a board (machine.reset(): main.py runs from a fresh heap); main.py run in place on
    the unix port."""
    if platform in UNIX_PLATFORMS:
        return mpremote(port, "exec", "--no-follow", RUN_MAIN)
    return mpremote(port, "reset")


def restart(port: str, platform: str) -> None:
    """Start the freshly copied firmware (see restart_command)."""
    _run(restart_command(port, platform), "restarting the board", timeout=QUICK_TIMEOUT_S)


def startup_error(port: str, seconds: float = 10.0) -> str:
    """Why main.py stops at the REPL: run it once more, following its output, and return the exception
    line ("" if none). A board's own start-up output is gone by the time a port is opened (opening
    flushes what the port holds), so this is the way to see it."""
    return last_error(_run(mpremote(port, "exec", RUN_MAIN), "running main.py", check=False, timeout=seconds).encode())


def wait_for_firmware(port: str, seconds: float = 10.0) -> Knock:
    """Knock until the firmware answers HELLO (a board's USB port vanishes for a moment while it resets).

    Returns the last Knock: kind "pnn" on success; "repl" when main.py stopped at the REPL (its raw bytes
    hold the traceback); "silent" when nothing answered in time.
    """
    deadline = time.monotonic() + seconds
    last = Knock("silent")
    while time.monotonic() < deadline:
        try:
            last = knock(port, timeout=1.0, interrupt=False)
        except (NoAnswer, PortNotFound):
            time.sleep(0.2)
            continue
        if last.kind in ("pnn", "version", "repl"):
            return last
    return last


def last_error(raw: bytes) -> str:
    """The exception line of the first traceback a board printed ("" if none): later ones are
    answers to our own knocking, which a REPL takes for code."""
    text = raw.decode(errors="replace").replace("\r", "")
    if "Traceback" not in text:
        return ""
    for line in text.split("Traceback", 1)[1].splitlines()[1:]:
        if line.strip() and not line[0].isspace():
            return line.strip().strip("\x04>").strip()
    return ""
