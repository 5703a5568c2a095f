"""`pnn --help` / `--version` and `import pnn` stay light (no torch), and the library picks torch's thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "matplotlib", "scipy", "sklearn", "rich", "serialx", "aiomqtt", "msgpack")


def _modules(code: str, env: dict | None = None) -> list[str]:
    """The modules a fresh interpreter holds after running `code` (which may exit through argparse)."""
    script = ("import sys, json, atexit\n"
              "atexit.register(lambda: print('MODULES=' + json.dumps(sorted(sys.modules))))\n" + code)  # fmt: skip
    paths = os.pathsep.join([str(ROOT / "host"), str(ROOT / "protocol"), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": paths, **(env or {})})  # fmt: skip
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES="))
    return json.loads(line.removeprefix("MODULES="))


def _baseline() -> int:
    return len(_modules("import argparse, pathlib, difflib, json, re, shutil, signal, time"))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["demo", "--help"], ["train", "--help"]])
def test_help_and_version_import_no_heavy_library(argv):
    mods = _modules(f"from pnn.cli import main\nmain({argv!r})")
    heavy = sorted({m.split('.')[0] for m in mods} & set(HEAVY))
    assert heavy == [], f"pnn {' '.join(argv)} imported {heavy}"
    assert len(mods) < _baseline() + 25, f"{len(mods)} modules for pnn {' '.join(argv)}"


def test_import_pnn_is_light_and_names_load_on_use():
    assert "torch" not in _modules("import pnn")
    mods = _modules("import pnn\nassert pnn.PhysicalLayer.__name__ == 'PhysicalLayer' and pnn.connect")
    assert "torch" in mods  # used, so loaded


def _threads(code: str, **env: str) -> int:
    clean = {k: "" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PNN_THREADS")}
    paths = os.pathsep.join([str(ROOT / "host"), str(ROOT / "protocol")])
    out = subprocess.run([sys.executable, "-c", code + "\nprint(torch.get_num_threads())"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, **clean, "PYTHONPATH": paths, **env})  # fmt: skip
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_the_library_chooses_the_thread_count_itself():
    # README's snippet, with no CLI in sight: torch first, then pnn
    assert _threads("import torch, pnn") == 1
    assert _threads("import pnn\nfrom pnn.physics import Electronic\nimport torch") == 1
    assert _threads("import torch, pnn", PNN_THREADS="2") == 2  # the user's choice wins
