"""pnn firmware: the device loop, transports (USB serial, MQTT), layer runner and HALs.

Runs on MicroPython boards and, unchanged, on MicroPython's unix port (firmware/sim/run.py).
The wire protocol itself lives in pnn_protocol (protocol/pnn_protocol, copied to the board's /lib).
"""

FW_VERSION = "0.1.0"
