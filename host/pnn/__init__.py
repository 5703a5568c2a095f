"""pnn: physical neural networks trained with physics-aware training (PAT).

Public API:
    PhysicalSystem  the protocol every physical layer satisfies (simulated, a Device, a DevicePool)
    PhysicalLayer   a system as an nn.Module: forward on the system, backward through its twin
    Twin, fit_twin  digital twins: collect data, fit, held-out NRMSE, save/load
"""

from .devices import connect
from .pat import PhysicalLayer
from .system import PhysicalSystem, SourcedSystem
from .twin import Twin, fit_twin

__all__ = ["PhysicalLayer", "PhysicalSystem", "SourcedSystem", "Twin", "connect", "fit_twin"]
__version__ = "0.1.0"
