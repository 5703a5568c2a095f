"""`python -m pnn.boards [--serial PATH ...] [--mqtt mqtt://host:port ...]`: list boards (as `pnn devices`)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from .discover import list_devices, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pnn.boards", description="List boards that answer HELLO.")
    parser.add_argument("--serial", action="append", default=[], metavar="PATH", help="also probe this port")
    parser.add_argument("--mqtt", action="append", default=[], metavar="URL", help="ask this broker, mqtt://host:port")
    parser.add_argument("--no-usb", action="store_true", help="do not scan USB serial ports")
    args = parser.parse_args(argv)
    for broker in args.mqtt:
        if not broker.startswith("mqtt://"):
            print(f"pnn devices: error: --mqtt takes mqtt://host:port, not {broker!r}", file=sys.stderr)
            return 2
    rows = list_devices(args.serial, args.mqtt, scan_usb=not args.no_usb)
    Console().print(table(rows))
    return 0 if any(r["status"] == "online" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
