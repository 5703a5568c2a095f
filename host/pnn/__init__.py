"""pnn: physical neural networks trained with physics-aware training (PAT).

Public API:
    PhysicalSystem  the protocol every physical layer satisfies (simulated, a Device, a DevicePool)
    PhysicalLayer   a system as an nn.Module: forward on the system, backward through its twin
    Twin, fit_twin  digital twins: collect data, fit, held-out NRMSE, save/load
    connect         a board by URL (sim://, serial://, mqtt://) as a PhysicalSystem

Names load on first use (PEP 562), so `import pnn` and `pnn --help` do not import torch.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from . import _threads

__version__ = "0.1.0"

_LAZY = {
    "PhysicalLayer": ".pat",
    "PhysicalSystem": ".system",
    "SourcedSystem": ".system",
    "Twin": ".twin",
    "fit_twin": ".twin",
    "connect": ".devices",
    "connect_all": ".devices",
}
__all__ = ["PhysicalLayer", "PhysicalSystem", "SourcedSystem", "Twin", "__version__", "connect", "connect_all",
           "fit_twin"]  # fmt: skip

if TYPE_CHECKING:
    from .devices import connect, connect_all
    from .pat import PhysicalLayer
    from .system import PhysicalSystem, SourcedSystem
    from .twin import Twin, fit_twin

if "torch" in sys.modules:  # `import torch, pnn`: choose the thread count now
    _threads.configure()


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    _threads.configure()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
