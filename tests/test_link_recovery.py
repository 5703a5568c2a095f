"""The link's recovery against the real firmware: fast re-sends that never run a RUN twice, a silent
reboot behind an open port noticed and the configuration re-applied, outages waited out up to
`patience` and then an OutageError naming the board."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
import tty
from pathlib import Path

import pytest
import torch
from _fixtures import restart
from _fixtures import wait_for as _wait_for

from pnn.devices import connect
from pnn.link import loop as _loop
from pnn.link.errors import OutageError
from pnn.testing.faults import Faults, FaultyCable, faulty_device
from pnn_protocol import frame, messages
from pnn_protocol.codec import packb

COUNTING = Path(__file__).with_name("fw_counting.py")


@pytest.mark.parametrize(("faults", "link", "sign"), [
    # requests pipelined 4 deep: damaged frames and replies that overtake re-send at once
    (Faults(corrupt=3e-3, drop=0.005, duplicate=0.01, seed=4), "window=4", "fast_resends"),
    # one request at a time through heavy corruption: it is re-sent when all its sends are answered
    (Faults(corrupt=1e-2, drop=0.01, duplicate=0.02, seed=5), "window=1", "fast_resends"),
    # one at a time, frames lost with no sign: the PING behind each RUN tells of the loss
    (Faults(drop=0.15, duplicate=0.02, seed=6), "window=1", "probes"),
], ids=["window4-corrupt", "window1-corrupt", "window1-silent-drops"])  # fmt: skip
def test_fast_resends_through_a_corrupting_cable_never_run_a_run_twice(tmp_path, faults, link, sign) -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    log = tmp_path / "fw.txt"
    with open(log, "wb") as f:
        proc = subprocess.Popen(["micropython", "-X", "heapsize=256k", str(COUNTING), os.ttyname(slave)],
                                stdout=f, stderr=f)  # fmt: skip
    os.close(slave)
    try:
        _wait_for(lambda: "serving" in log.read_text(errors="replace"), 15, "the firmware serves")
        cable = FaultyCable(master, faults, tmp_path)
        try:
            with connect(f"serial://{cable.path}?n_in=32&n_out=16&chunk=2&{link}&heartbeat=0") as board:
                drive = torch.rand(240, 32, generator=torch.Generator().manual_seed(0))
                for i in range(0, len(drive), 24):
                    board(drive[i : i + 24])
                stats = board.stats()
        finally:
            cable.close()
        assert stats[sign] > 0, f"the faults should have triggered {sign}: {stats}"
        os.write(master, b"\x00" + frame(packb(messages.repl(1))))  # a clean line now: the counts, please
        proc.wait(15)
        counts = log.read_text(errors="replace").split("counts ")[-1]
        runs = int(counts.split('"runs": ')[1].split(",")[0].rstrip("}"))
        assert runs == stats["requests"] == 120, (counts, stats)  # each RUN executed exactly once
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)


def _config(board) -> dict:
    return _loop.run(board.aio._control(messages.config_request(board.aio._next_id())))["config"]


def test_a_silent_reboot_behind_an_open_port_is_noticed_and_the_configuration_reapplied(firmware_serial, caplog):
    sim = firmware_serial(seed=3, cable=True)  # the host's port (the cable's) stays open through the reboot
    url = f"serial://{sim.host_path}?n_in=16&n_out=8&rest_code=77&heartbeat=0.2"
    with connect(url) as board:
        assert _config(board)["rest_code"] == 77, "connect applies the URL's configuration"
        before = board(torch.rand(4, 16))
        with caplog.at_level(logging.WARNING, logger="pnn.link.client"):
            restart(sim, "--serial", sim.path, "--seed", "3", ready="serving")  # SIGKILL + boot: no goodbye
            _wait_for(lambda: board.stats()["reboots"] == 1 and board.aio.connected, 90, "the reboot is noticed")
        assert _config(board)["rest_code"] == 77, "the configuration is re-applied after the reboot"
        assert any("rebooted" in r.getMessage() and "re-applied" in r.getMessage() for r in caplog.records)
        assert board(torch.rand(4, 16)).shape == before.shape


def test_a_call_waits_through_an_outage_and_resumes(firmware_serial) -> None:
    sim = firmware_serial(seed=4, cable=True)
    with connect(f"serial://{sim.host_path}?n_in=16&n_out=8&heartbeat=0.2", patience=60) as board:
        board(torch.rand(4, 16))
        sim.proc.kill()  # the board loses power for ~2 s, mid-run
        threading.Timer(2.0, restart, args=(sim, "--serial", sim.path, "--seed", "4"), kwargs={"ready": "serving"}).start()
        start = time.monotonic()
        response = board(torch.rand(64, 16))  # waits for it, then goes on
        assert response.shape == (64, 8) and time.monotonic() - start > 1.5
        _wait_for(lambda: board.aio.connected and board.waiting == "", 10, "the link is up and nothing waits")


def test_an_outage_longer_than_patience_is_an_outage_error_naming_the_board() -> None:
    with connect("sim://electronic?seed=2&n_in=16&n_out=8&noise=off&heartbeat=0.1", patience=0.5) as board:
        board(torch.rand(2, 16))
        board.aio.transport.unplug(60.0)
        _wait_for(lambda: board.waiting != "", 5, "the device says what it waits for")
        assert board.waiting.startswith(f"waiting for {board.id} since ")
        with pytest.raises(OutageError, match=r"sim://electronic\?seed=2.*unreachable since .*patience 0.5 s"):
            board(torch.rand(2, 16))


def test_a_sim_board_whose_firmware_dies_serves_again_at_the_same_url(tmp_path) -> None:
    from pnn.boards.simboard import SimBoard

    with SimBoard(seed=5, folder=tmp_path / "board") as board:
        url = board.url
        with connect(f"{url}?n_in=16&n_out=8&heartbeat=0.2", patience=60) as device:
            device(torch.rand(2, 16))
            board.proc.kill()  # what `pnn sim-board` does when its firmware dies: respawn it behind the same relay
            board.proc.wait()
            board.respawn()
            assert board.url == url and board.restarts == 1
            assert device(torch.rand(2, 16)).shape == (2, 8)


def test_redundant_copies_over_mqtt_never_run_a_run_twice(mosquitto_broker, firmware_mqtt) -> None:
    """Through a broker that loses most RUNs with no sign, each goes out as several copies of one id:
    the real firmware runs the first to arrive and replays its RESULT for the rest. Its board is
    noisy and takes one request at a time, so a RUN run twice would shift every later response."""
    host, port = tuple(mosquitto_broker)
    firmware_mqtt(mosquitto_broker, "copies-clean", seed=3)
    firmware_mqtt(mosquitto_broker, "copies-faulty", seed=3)
    link = "n_in=16&n_out=8&chunk=4&window=1&heartbeat=0"
    drive = torch.rand(96, 16, generator=torch.Generator().manual_seed(2))
    with connect(f"mqtt://{host}:{port}/copies-clean?{link}") as board:
        expected = board(drive)
    faults = Faults(corrupt=1e-2, drop=0.01, duplicate=0.01, seed=7)
    with faulty_device(f"mqtt://{host}:{port}/copies-faulty?{link}", faults) as board:
        got = board(drive)
        stats = board.stats()
    assert stats["copies"] > 0, f"the losses should have made copies pay: {stats}"
    assert stats["requests"] == 24 and stats["samples"] == 96, stats
    assert torch.equal(got, expected), "a copy ran a RUN twice (the noise stream shifted) or a reply went astray"
