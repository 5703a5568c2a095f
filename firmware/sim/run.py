"""The pnn firmware on MicroPython's unix port, serving a simulated board.

    micropython firmware/sim/run.py --serial PTY_PATH [--seed N] [--board FILE]
    micropython firmware/sim/run.py --mqtt HOST:PORT --id NAME [--seed N] [--board FILE]
                                    [--user U --password P] [--keepalive S]

Same device loop, runner and transports as on a board; the sim HAL (board "hal": "sim") stands in for the
DAC, circuit and ADC. Exits 0 after a REPL request, 1 when the serial peer hangs up, 2 on bad arguments.
"""

import gc
import sys

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_FW = _HERE + "/.."
sys.path.insert(0, _FW + "/../protocol")
sys.path.insert(0, _FW)

USAGE = (
    "usage: micropython firmware/sim/run.py (--serial PTY_PATH | --mqtt HOST:PORT --id NAME) "
    "[--seed N] [--board FILE] [--user U] [--password P] [--keepalive S]"
)


def _fail(msg: str) -> None:
    print("run.py: " + msg, file=sys.stderr)
    print(USAGE, file=sys.stderr)
    sys.exit(2)


def parse(argv: list) -> dict:
    """argv (without the script) -> options; bad input ends the process with status 2."""
    opts = {"board": _FW + "/boards/sim.json"}
    names = ("--serial", "--mqtt", "--id", "--seed", "--board", "--user", "--password", "--keepalive")
    i = 0
    while i < len(argv):
        a = argv[i]
        if a not in names:
            _fail("unknown argument %r" % a)
        if i + 1 >= len(argv):
            _fail("%s needs a value" % a)
        opts[a[2:]] = argv[i + 1]
        i += 2
    if ("serial" in opts) == ("mqtt" in opts):
        _fail("give exactly one of --serial and --mqtt")
    for key in ("seed", "keepalive"):
        if key in opts:
            try:
                opts[key] = int(opts[key])
            except ValueError:
                _fail("--%s must be an integer, not %r" % (key, opts[key]))
            if opts[key] < 0:
                _fail("--%s must be >= 0" % key)
    if "mqtt" in opts:
        host, _, port = opts["mqtt"].rpartition(":")
        try:
            port = int(port)
        except ValueError:
            port = 0
        if not host or not 0 < port < 65536:
            _fail("--mqtt must be HOST:PORT, not %r" % opts["mqtt"])
        opts["host"] = host
        opts["port"] = port
        if "id" not in opts:
            _fail("--mqtt needs --id NAME")
    return opts


def main() -> int:
    opts = parse(sys.argv[1:])
    from pnn_fw import config
    from pnn_fw.hal import make_hal
    from pnn_fw.loop import ACTION_REPL, DeviceLoop

    board = config.load_board(opts["board"])
    if "seed" in opts:
        board["seed"] = opts["seed"]
    if "id" in opts:
        board["id"] = opts["id"]
        board.setdefault("mqtt", {})["id"] = opts["id"]
    # Import (compile) the transport before the big buffers exist, and collect the compiler's garbage,
    # so the buffers come from an unfragmented heap (256 KiB in the tests, as on a board); the MQTT
    # client's frame-sized buffer comes first, while the heap still has room that big in one piece.
    client = settings = None
    if "serial" in opts:
        from pnn_fw.serial_link import PortClosed, PtyPort, serve
    else:
        from pnn_fw.mqtt_link import make_client, serve_mqtt

        m = board.get("mqtt") or {}
        settings = {
            "host": opts["host"],
            "port": opts["port"],
            "id": opts["id"],
            "user": opts.get("user") or None,
            "password": opts.get("password") or None,
            "keepalive": opts.get("keepalive", m.get("keepalive", 30)),
            "backoff_max": m.get("backoff_max", 2),
        }
        client = make_client(settings, board["max_frame"])
    gc.collect()
    loop = DeviceLoop(board, make_hal(board), config.device_id(board))
    if settings is None:
        port = PtyPort(opts["serial"])
        print("pnn sim: serving %s on %s" % (loop.device_id, opts["serial"]), file=sys.stderr)
        try:
            action = serve(port, loop)
        except PortClosed:
            print("pnn sim: serial peer hung up", file=sys.stderr)
            return 1
        finally:
            port.close()
    else:
        print(
            "pnn sim: serving %s via mqtt %s:%d" % (opts["id"], opts["host"], opts["port"]), file=sys.stderr
        )
        action = serve_mqtt(loop, settings, None, client)
    return 0 if action == ACTION_REPL else 1


sys.exit(main())
