"""Board entry point: read board.json (+ secrets.json) from the current folder (/ on a board), pick the
transport, serve until told to stop.

Copy to the board's root with board.json (one of firmware/boards/*.json), pnn_fw/ and pnn_protocol/
in /lib (see firmware/README.md). Hold the board's "boot_skip" pin low at reset to skip serving and stay
at the REPL; otherwise the REPL request (pnn_protocol.messages.repl) brings it back.
"""

# Before anything else: Ctrl-C off, so that a 0x03 byte in a host's frame is data. A host re-sends its
# requests while the board boots, and compiling the modules below takes seconds (tens on an emulated
# Pico); a 0x03 arriving then raised KeyboardInterrupt here and left the board at the REPL after every
# reset. MicroPython turns Ctrl-C on just before it runs main.py, so one may have arrived before the
# line below ran: it is raised at the first branch (the loop's), inside the try, and dropped; that
# byte's frame is lost, and the host re-sends it.
import micropython

try:
    micropython.kbd_intr(-1)
    for _ in range(1):
        pass
except KeyboardInterrupt:
    pass

import gc
import sys

from pnn_fw import config

BOOT_COUNTER = "boot_count"  # in / next to board.json: one small write per boot


def _boot_skip(board: dict) -> bool:
    """True when the board file names a boot_skip pin and it reads low (button to GND pressed)."""
    pin = (board.get("pins") or {}).get("boot_skip")
    if pin is None:
        return False
    from machine import Pin

    return Pin(pin, Pin.IN, Pin.PULL_UP).value() == 0


def _make_loop(board: dict):
    """The device loop, its buffers allocated from a freshly collected (unfragmented) heap."""
    from pnn_fw.hal import make_hal
    from pnn_fw.loop import DeviceLoop

    gc.collect()
    # the boot counter makes every boot's id new, also on a chip without randomness (loop.boot_id)
    return DeviceLoop(board, make_hal(board), config.device_id(board), boot_counter=BOOT_COUNTER)


def main() -> None:
    board = config.load_board("board.json", "secrets.json")  # the board starts in /
    if _boot_skip(board):
        micropython.kbd_intr(3)
        print("pnn: boot_skip pin held low; staying at the REPL")
        return
    from pnn_fw.loop import ACTION_HARD_RESET

    # Each branch imports (compiles) its transport before _make_loop allocates the big buffers.
    if board.get("transport", "serial") == "mqtt":
        micropython.kbd_intr(3)  # the USB console carries no frames here: Ctrl-C stops the board as usual
        from pnn_fw.mqtt_link import make_client, serve_mqtt
        from pnn_fw.wifi import WiFi

        settings = config.mqtt_settings(board)
        client = make_client(settings, board["max_frame"])  # its frame-sized buffer first (see there)
        loop = _make_loop(board)
        wifi = board.get("wifi") or {}
        action = serve_mqtt(loop, settings, WiFi(wifi.get("ssid", ""), wifi.get("password", "")), client)
    else:
        from pnn_fw.serial_link import StdioPort, serve

        loop = _make_loop(board)
        port = StdioPort()
        try:
            action = serve(port, loop)
        finally:
            port.close()  # Ctrl-C works again: the REPL (and mpremote) can take over
    if action == ACTION_HARD_RESET:
        import machine

        machine.reset()
    print("pnn: left the binary protocol; REPL ready", file=sys.stderr)


main()
