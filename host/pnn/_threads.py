"""The torch thread count pnn runs with, chosen once by the library (not only by the CLI).

A physical layer's tensors are small (a batch of 64 x 64): extra intra-op threads cost more in
hand-offs than they win, and on a busy 2-core machine the default (one per core) made a twin fit
~9x slower (300 s against 35 s). So pnn uses one thread unless told otherwise: PNN_THREADS=N, or
OMP_NUM_THREADS / MKL_NUM_THREADS set by the user, or torch.set_num_threads(N) after importing pnn.
"""

from __future__ import annotations

import os
import sys

_done = False


def configure() -> None:
    """Set torch's intra-op threads once (if torch is imported); a no-op afterwards."""
    global _done
    if _done or "torch" not in sys.modules:
        return
    _done = True
    if any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")) and not os.environ.get("PNN_THREADS"):
        return  # the user's choice, made the usual way
    try:
        threads = max(1, int(os.environ.get("PNN_THREADS", "1")))
    except ValueError:
        threads = 1
    sys.modules["torch"].set_num_threads(threads)
