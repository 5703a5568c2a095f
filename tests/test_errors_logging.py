"""Typed errors (matched by type, never by text) and the `pnn.*` loggers the CLI shows."""

from __future__ import annotations

import logging
import threading

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
