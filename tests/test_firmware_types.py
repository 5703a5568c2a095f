"""Firmware type checks: pyright against the MicroPython board stubs for esp32 and rp2, as CI runs them.

For each port, firmware/pyrightconfig.<port>.json checks that port's HAL, the layer runner and the
device loop with the stubs in typings/<port> (CI: `pip install --target typings/<port>
micropython-<port>-stubs`; by hand: `cd firmware && pyright -p pyrightconfig.<port>.json`). In the
same run, under the same settings, a few lines of wrong board code must be rejected, so a clean
result cannot come from stubs that failed to load or from a check that checks nothing.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"

BAD_ESP32 = """\
from machine import ADC, DAC, Pin

ADC(Pin(34)).atten("11db")
DAC(Pin(25)).write(1, 2)
"""

BAD_RP2 = """\
import machine
from machine import PWM, Pin

PWM(Pin(15)).duty_u16("half")
machine.DAC(Pin(25))
"""

# port -> (bad code, {line (1-based): words the error message must contain})
PORTS = {
    "esp32": (BAD_ESP32, {3: ["Literal['11db']", "int"], 4: ["positional"]}),
    "rp2": (BAD_RP2, {4: ["Literal['half']", "int"], 5: ['"DAC"']}),  # the RP2040 has no DAC
}


def _run_pyright(config: Path, files: list[Path]) -> dict:
    """pyright's JSON report for `files` checked under `config`'s settings (stubs, strictness)."""
    exe = shutil.which("pyright")
    assert exe, "pyright is required (pip install pyright)"
    proc = subprocess.run(
        [exe, "-p", str(config), "--outputjson", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip().startswith("{"), proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("port", sorted(PORTS))
def test_firmware_type_checks_for_port(port, tmp_path):
    config = FIRMWARE / f"pyrightconfig.{port}.json"
    stubs = ROOT / "typings" / port
    assert (stubs / "machine.pyi").is_file(), (
        f"MicroPython stubs missing: pip install --target typings/{port} micropython-{port}-stubs"
    )
    settings = json.loads(config.read_text())
    hal = "pnn_fw/hal/esp32.py" if port == "esp32" else "pnn_fw/hal/rp2040.py"
    assert {hal, "pnn_fw/runner.py", "pnn_fw/loop.py", "pnn_fw/hal/__init__.py"} <= set(settings["include"])
    assert settings["stubPath"] == settings["typeshedPath"] == f"../typings/{port}"
    present = [p for p in settings["include"] if (FIRMWARE / p).is_file()]
    assert hal in present and "pnn_fw/runner.py" in present

    bad_code, expected = PORTS[port]
    bad = tmp_path / f"bad_{port}.py"
    bad.write_text(bad_code)
    # One run per port: the config's own files plus the bad snippet, all under the config's settings.
    report = _run_pyright(config, [FIRMWARE / p for p in present] + [bad])

    by_file: dict[str, list[dict]] = {}
    for d in report["generalDiagnostics"]:
        if d["severity"] == "error":
            by_file.setdefault(Path(d["file"]).name, []).append(d)
    firmware_errors = {f: e for f, e in by_file.items() if f != bad.name}
    assert not firmware_errors, json.dumps(firmware_errors, indent=1)
    assert report["summary"]["filesAnalyzed"] == len(present) + 1

    found = {d["range"]["start"]["line"] + 1: d["message"] for d in by_file.get(bad.name, [])}
    for line, words in expected.items():
        assert line in found, f"pyright missed the error on line {line} of:\n{bad_code}\ngot {found}"
        assert all(w in found[line] for w in words), found[line]
    assert len(found) == len(expected)
