"""Boards as PhysicalSystems: asyncio clients over serial, MQTT and in-process simulation, and a pool.

Public API:
    connect(url) -> Device          one board: `sim://electronic?seed=3&realtime=1`,
                                    `serial:///dev/ttyACM0?rate=20000`, `mqtt://host:1883/<device-id>`
    connect_all(url or [urls])      a Device, or a DevicePool over several boards
    Device                          a PhysicalSystem; `.aio` is its asyncio client
    DevicePool(devices)             N boards as one PhysicalSystem; `run_with_sources` says which board
                                    measured each row, so PAT uses that board's own twin
    list_devices()                  serial ports that answer HELLO and MQTT boards with a retained status
"""

from typing import Any

from ._facade import Device, DevicePool, connect, connect_all


def __getattr__(name: str) -> Any:
    # `list_devices` lives in pnn.boards.discover (a bench tool); this alias keeps old callers working
    # without making the devices layer import the boards layer at import time.
    if name == "list_devices":
        from ..boards.discover import list_devices

        return list_devices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Device", "DevicePool", "connect", "connect_all", "list_devices"]
