"""Board entry point: read board.json (+ secrets.json) from the current folder (/ on a board), pick the
transport, serve until told to stop.

Copy to the board's root with board.json (one of firmware/boards/*.json), pnn_fw/ and pnn_protocol/
in /lib (see firmware/README.md). Hold the board's "boot_skip" pin low at reset to skip serving and stay
at the REPL; otherwise the REPL request (pnn_protocol.messages.repl) brings it back.
"""

import gc
import sys

from pnn_fw import config


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
    return DeviceLoop(board, make_hal(board), config.device_id(board))


def main() -> None:
    board = config.load_board("board.json", "secrets.json")  # the board starts in /
    if _boot_skip(board):
        print("pnn: boot_skip pin held low; staying at the REPL")
        return
    from pnn_fw.loop import ACTION_HARD_RESET

    # Each branch imports (compiles) its transport before _make_loop allocates the big buffers.
    if board.get("transport", "serial") == "mqtt":
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
