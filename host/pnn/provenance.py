"""What a run folder records about where its numbers came from: versions, boards, calibration, seeds.

Like QCoDeS' and Bluesky's snapshots: enough to tell, months later, which code, libraries, firmware
and calibration produced a number, without the secrets (broker passwords stay out).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def versions() -> dict[str, Any]:
    """pnn, its git commit (when run from a checkout), torch, numpy, Python, the OS."""
    import numpy
    import torch

    from . import __version__

    return {"pnn": __version__, "git": _git(Path(__file__).resolve().parent), "torch": torch.__version__,
            "numpy": numpy.__version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "torch_threads": torch.get_num_threads()}  # fmt: skip


def _git(folder: Path) -> dict[str, Any] | None:
    """The commit of the checkout pnn runs from (None for an installed wheel), and whether it had edits."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()  # fmt: skip

        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def boards(system: Any) -> list[dict[str, Any]]:
    """Each board's HELLO (id, firmware, caps), its link (the URL-derived id, no secrets) and the calibration
    its codes were converted with.

    A simulated system is recorded by its own description (kind, parts, noise, seed).
    """
    members = getattr(system, "devices", None) or [system]
    rows = []
    for m in members:
        aio = getattr(m, "aio", None)
        if aio is None or not hasattr(aio, "hello"):
            describe = getattr(m, "describe", None)
            rows.append({"simulated": describe() if callable(describe) else type(m).__name__})
            continue
        cal = getattr(aio, "cal", None)
        calibration = None if cal is None else {k: getattr(cal, k) for k in ("dac_lo", "dac_hi", "adc_lo", "adc_hi")}
        rows.append({"id": aio.hello.get("device"), "link": getattr(m, "id", None), "hello": aio.hello,
                     "calibration": calibration,
                     "calibration_source": "URL parameters (pnn calibrate prints them)" if _calibrated(aio)
                     else "none: full-scale codes"})  # fmt: skip
    return rows


def _calibrated(aio: Any) -> bool:
    params = getattr(getattr(aio, "url", None), "params", {}) or {}
    return any(params.get(k) is not None for k in ("dac_lo", "dac_hi", "adc_lo", "adc_hi"))
