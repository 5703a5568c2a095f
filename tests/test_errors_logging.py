"""Typed errors (matched by type, never by text) and the `pnn.*` loggers the CLI shows."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import aiomqtt
import pytest
import torch

from pnn import cli
from pnn.boards import diagnose
from pnn.devices import connect
from pnn.link.codes import Capabilities
from pnn.link.errors import (
    BrokerRefused,
    CapabilityError,
    LinkDown,
    PortNotFound,
    ProtocolVersionError,
    UserError,
    caused_by,
    kind_of,
)
from pnn.link.mqtt import broker_error
from pnn.link.url import BadURL, parse_url


def test_another_protocol_version_is_its_own_type() -> None:
    with pytest.raises(ProtocolVersionError) as e:
        Capabilities.from_hello({"proto": 99, "caps": dict.fromkeys(Capabilities.__dataclass_fields__, 1)})
    assert isinstance(e.value, CapabilityError) and isinstance(e.value, UserError)


def test_refused_credentials_are_told_apart_from_a_broker_that_is_away() -> None:
    refused = broker_error(aiomqtt.MqttCodeError(5, "Not authorized"), "broker x")
    away = broker_error(aiomqtt.MqttError("connection refused"), "broker x")
    assert type(refused) is BrokerRefused and type(away) is LinkDown
    assert kind_of(refused) == "BrokerRefused" and kind_of(away) == ""


def test_the_cause_of_a_wrapped_failure_is_found_by_type() -> None:
    try:
        try:
            raise PortNotFound("no serial port /dev/x")
        except PortNotFound as inner:
            raise ConnectionError("no answer within 1 s") from inner
    except ConnectionError as outer:
        assert isinstance(caused_by(outer, PortNotFound), PortNotFound)
        assert caused_by(outer, BrokerRefused) is None
        assert kind_of(outer) == "PortNotFound"


def test_a_bad_url_keeps_its_reason_apart_from_the_forms_it_lists() -> None:
    with pytest.raises(BadURL) as e:
        parse_url("serial://relative/path")
    assert "use one of" in str(e.value) and "use one of" not in e.value.problem and e.value.forms
    with pytest.raises(ValueError):  # still a ValueError for callers that want any bad value
        parse_url("mqtt://user:secret@host/")


def test_a_devices_row_is_explained_by_its_error_kind_not_its_text() -> None:
    row = {"url": "mqtt://127.0.0.1:1", "status": "broker unreachable", "error": "anything at all",
           "error_kind": "BrokerRefused"}
    assert "refused the user name and password" in diagnose.row_problem(row)
    row["error"] = "Not authorized"  # the text alone no longer decides
    row["error_kind"] = ""
    assert "cannot reach the MQTT broker" in diagnose.row_problem(row)


def test_cli_main_prints_a_user_error_but_lets_a_bug_raise(monkeypatch, capsys) -> None:
    def user_mistake(args, console):
        raise BadURL("not a device URL: 'x'")

    def bug(args, console):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "cmd_report", user_mistake)  # build_parser() binds the handler when main runs
    assert cli.main(["report", "somewhere"]) == 2
    assert "pnn report: error: not a device URL" in capsys.readouterr().err
    monkeypatch.setattr(cli, "cmd_report", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        cli.main(["report", "somewhere"])


def test_the_cli_shows_warnings_and_with_verbose_also_info(capsys) -> None:
    log = logging.getLogger("pnn.link.client")
    cli.show_logs(False)
    log.info("an info line")
    log.warning("a warning line")
    err = capsys.readouterr().err
    assert "a warning line" in err and "an info line" not in err
    cli.show_logs(True)
    log.info("an info line")
    assert "pnn: INFO: pnn.link.client: an info line" in capsys.readouterr().err
    cli.show_logs(False)


def test_a_dropped_link_is_logged_when_it_drops_and_when_it_is_back(caplog) -> None:
    url = "sim://electronic?seed=2&n_in=32&n_out=8&noise=off&substeps=1&realtime=1&max_batch=8&heartbeat=0.2"
    url += "&reconnect=120"  # building the physics can take many seconds on a loaded machine
    caplog.set_level(logging.INFO, logger="pnn")
    with connect(url) as device:
        threading.Timer(0.02, device.aio.transport.unplug, args=(0.3,)).start()
        device(torch.rand(64, 32))
        assert device.stats()["reconnects"] == 1
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    warnings = [m for name, level, m in records if name == "pnn.link.client" and level == logging.WARNING]
    assert any("link down" in m for m in warnings), records
    assert any("link back" in m for m in warnings), records


QUIET_EXIT = """
import sys
from pnn.cli import main
for argv in (["train", "t.toml", "--out", "run"], ["eval", "run", "--trainer", "digital"],
             ["collect", "t.toml", "--out", "data"]):
    code = main(argv)
    print("EXIT", argv[0], code, file=sys.stderr)
import pnn, torch
device = pnn.connect(URL)  # never closed: the process's exit ends its link
device(torch.rand(4, 64))
"""


def test_a_process_that_ends_with_its_boards_open_or_closed_says_no_link_went_down(tmp_path):
    # `pnn collect` and `pnn eval` left their board open, and the exit's cancel of its link logged
    # "link down (None); waiting up to 600 s for it to come back" as the process shut down.
    url = "sim://electronic?n_in=64&n_out=64&reconnect=120"  # building the physics can take seconds under load
    (tmp_path / "t.toml").write_text(f"""
[experiment]
name = "quiet-exit"
[task]
name = "digits"
[system]
url = "{url}"
[twin]
samples = 100
epochs = 1
[train]
trainers = ["digital"]
depth = 1
epochs = 1
""")
    root = Path(__file__).resolve().parents[1]
    paths = os.pathsep.join([str(root / "host"), str(root / "protocol"), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", f"URL = {url!r}\n" + QUIET_EXIT], cwd=tmp_path, capture_output=True,
                         text=True, timeout=900, env={**os.environ, "PYTHONPATH": paths})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [ln for ln in out.stderr.splitlines() if ln.startswith("EXIT")] == [
        "EXIT train 0", "EXIT eval 0", "EXIT collect 0"], out.stderr  # fmt: skip
    assert "link down" not in out.stderr, out.stderr
