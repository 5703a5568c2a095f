"""Under MicroPython: the firmware's serial loop on a pty, saying how many RUNs it executed.

    micropython tests/fw_counting.py PTY_PATH [BOARD_FILE]

Serves as `firmware/sim/run.py --serial` does (same DeviceLoop, same transport); after a REPL request
it prints `counts {...}` (the loop's requests, runs, replays, errors) to stderr and exits 0.
"""

import json
import sys

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _HERE + "/../protocol")
sys.path.insert(0, _HERE + "/../firmware")

from pnn_fw import config  # noqa: E402
from pnn_fw.hal import make_hal  # noqa: E402
from pnn_fw.loop import DeviceLoop  # noqa: E402
from pnn_fw.serial_link import PtyPort, serve  # noqa: E402

board = config.load_board(sys.argv[2] if len(sys.argv) > 2 else _HERE + "/../firmware/boards/sim.json")
loop = DeviceLoop(board, make_hal(board), config.device_id(board))
port = PtyPort(sys.argv[1])
print("serving", file=sys.stderr)
serve(port, loop)
print("counts " + json.dumps(loop.counts), file=sys.stderr)
