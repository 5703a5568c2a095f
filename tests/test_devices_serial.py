"""pnn.connect over serial to the real firmware under MicroPython, through a pty cable."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from _fixtures import board_file, kill, restart

from pnn.devices import connect
from pnn.link.url import parse_url


def test_hello_caps_and_runs_of_several_sizes(firmware_serial) -> None:
    sim = firmware_serial(seed=1, cable=True)
    with connect(f"serial://{sim.host_path}?n_in=64&n_out=16&rate=20000") as board:
        caps = board.capabilities
        assert caps["board"] == "sim" and caps["caps"]["max_drive"] == 512 and caps["caps"]["adc_bits"] == 12
        for batch in (1, 16, 45):  # 45: more than max_batch (16), so three requests
            response = board(torch.rand(batch, 64))
            assert response.shape == (batch, 16) and response.dtype == torch.float32
            assert 0.0 <= float(response.min()) and float(response.max()) <= 1.0
        stats = board.stats()
        assert stats["samples"] == 62 and stats["requests"] == 5 and stats["busy_s"] > 0


def test_a_board_that_cannot_do_the_url_is_refused_with_the_reason(firmware_serial) -> None:
    sim = firmware_serial(cable=True)
    with pytest.raises(ValueError, match=r"n_in=1000 > max_drive=512.*rate=100 outside 1000\.\.50000"):
        connect(f"serial://{sim.host_path}?n_in=1000&n_out=10&rate=100")


def test_a_missing_port_is_named() -> None:
    with pytest.raises(ConnectionError, match="no serial port /dev/pnn-no-such-port"):
        connect("serial:///dev/pnn-no-such-port")


def test_a_board_killed_mid_request_and_restarted_finishes_the_batch(firmware_serial, tmp_path) -> None:
    paced = board_file(tmp_path, paced=True)  # real-time pacing: 64 + 8 ticks at 20 kS/s = 3.6 ms an example
    sim = firmware_serial(seed=2, cable=True, board=paced)
    url = f"serial://{sim.host_path}?n_in=64&n_out=16&rate=20000&timeout=0.3&heartbeat=0.2&retries=10"
    with connect(url) as board:
        future = board.submit(torch.rand(96, 64))  # 6 requests, ~0.35 s of board time
        time.sleep(0.08)
        kill(sim)
        time.sleep(0.3)
        restart(sim, "--serial", sim.path, "--seed", "2", "--board", paced, ready="serving")
        response, sources = future.result(timeout=30)
        stats = board.stats()
    assert response.shape == (96, 16) and sources == [board.id] * 96
    assert stats["samples"] == 96, "each example's result is counted once"
    assert stats["retries"] + stats["reconnects"] >= 1, "the kill must have cost a request its reply"


def test_uint8_drive_codes_and_the_boot_id_over_the_real_firmware(firmware_serial) -> None:
    """An 8-bit DAC board offers uint8 drive codes; the host sends them (the firmware refuses a RUN whose
    drive length does not match its drive_width) and gets the same response as with uint16 codes."""
    from pnn.link.codes import Calibration, Capabilities, boot_id
    from pnn.link.sync import StreamLink, SyncClient

    sims = [firmware_serial(seed=4, cable=True), firmware_serial(seed=4)]
    url = f"serial://{sims[0].host_path}?n_in=32&n_out=8&rate=20000"
    drive = torch.rand(3, 32, generator=torch.Generator().manual_seed(1))
    with connect(url) as board:
        hello = board.capabilities
        caps = Capabilities.from_hello(hello)
        assert caps.drive_width == 1 and caps.boot == boot_id(hello) is not None
        narrow = board(drive)
    cal = Calibration.for_device(caps, parse_url(url))
    assert cal.encode(drive.numpy()).dtype == "u1"
    wide = Calibration(caps.dac_bits, caps.adc_bits)  # the same codes as uint16, to a same-seed board
    c = SyncClient(StreamLink(sims[1].fd), timeout=5.0)
    r = c.run(wide.encode(drive.numpy()).tobytes(), 3, 32, 20000, settle=8, n_out=8)  # the URL default settle
    assert torch.equal(narrow, torch.from_numpy(cal.decode(np.frombuffer(r["resp"], "<u2").reshape(3, 8))))
    assert boot_id(c.hello()) != caps.boot  # another boot, another id


def test_a_pools_one_row_batch_goes_to_the_first_board_and_to_another_if_that_one_dies(firmware_serial, tmp_path):
    """A one-row batch skips the pool's workers (AsyncPool._one_row; a serial board sends it in the same
    loop callback) and keeps their rules: the first connected board measures it, and a board that dies
    with the row in flight hands it to another."""
    import threading

    from pnn.devices import DevicePool

    paced = board_file(tmp_path, paced=True)  # 512 ticks at 1 kS/s: half a second a row
    sims = [firmware_serial(seed=s, cable=True, board=paced) for s in (0, 1)]
    urls = [f"serial://{s.host_path}?n_in=512&n_out=8&rate=1000&settle=0&timeout=0.3&heartbeat=0.2&give_up=1"
            for s in sims]  # fmt: skip
    with DevicePool(urls, patience=10) as pool:
        drive = torch.rand(1, 512, generator=torch.Generator().manual_seed(5))
        first, sources = pool.run_with_sources(drive)
        assert sources == [pool.ids[0]] and first.shape == (1, 8)
        threading.Timer(0.15, kill, args=(sims[0],)).start()  # mid-row
        again, sources = pool.run_with_sources(drive)
        assert sources == [pool.ids[1]] and again.shape == (1, 8)
        assert pool.aio.rerun_rows == 1
