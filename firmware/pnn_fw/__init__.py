"""pnn firmware: the device loop, transports (USB serial, MQTT), layer runner and HALs.

Runs on MicroPython boards and, unchanged, on MicroPython's unix port (firmware/sim/run.py).
The wire protocol itself lives in pnn_protocol (protocol/pnn_protocol, copied to the board's /lib).
"""

import gc

# Collect every 16 KiB allocated, from the first import on. By default the heap is collected only once
# full, so compiling the modules spreads their bytecode over the whole heap between the compiler's
# garbage, and the frame-sized buffers allocated next find no hole big enough (a 256 KiB heap kept
# 44 KiB in one piece, and failed with longer module paths; 75 KiB with this). The hot loops
# allocate nothing, so no collection ever runs during a measurement.
gc.threshold(16384)

FW_VERSION = "0.1.0"
