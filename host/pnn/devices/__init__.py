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

from ._facade import Device, DevicePool, connect, connect_all
from ._list import list_devices

__all__ = ["Device", "DevicePool", "connect", "connect_all", "list_devices"]
