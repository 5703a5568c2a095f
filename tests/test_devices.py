"""pnn.devices with the in-process simulated board: URLs, the code boundary, retries, reconnects, recording."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import pnn
from pnn import physics
from pnn.devices import Device, connect
from pnn.link.codes import Calibration
from pnn.link.url import parse_url
from pnn.store import DataStore

# The board rounds each bin's mean to a whole ADC code, and a float32 difference between batch sizes
# can tip one sample across a code boundary: so responses agree to within about a code.
CODES = 1.5 / 4095
QUIET = "sim://electronic?seed={seed}&n_in=32&n_out=8&noise=off&substeps=1"


def reference(seed: int, drive: torch.Tensor) -> torch.Tensor:
    """What the same board gives with pnn.physics' own 8-bit DAC and 12-bit ADC (noise off)."""
    noise = physics.Noise(additive=0.0, multiplicative=0.0, drift=0.0, dac_bits=8, adc_bits=12)
    return physics.Electronic(32, 8, seed=seed, noise=noise, sample_rate=20000.0, substeps=1)(drive)


@pytest.fixture(scope="module")
def quiet() -> Device:
    device = connect(QUIET.format(seed=3))
    yield device
    device.close()


@pytest.mark.parametrize("url, words", [
    ("ttyACM0", "not a device URL"),
    ("http://x/y", "unknown URL scheme"),
    ("sim://toaster", "unknown simulated system"),
    ("sim://electronic?sede=3", "unknown parameter 'sede'"),
    ("sim://electronic?seed=three", "not a valid int"),
    ("sim://electronic?n_in=8&n_out=16", "n_out=16 > n_in=8"),
    ("serial://dev/ttyACM0", "absolute port path"),
    ("mqtt://broker:1883/", "one device id"),
    ("mqtt://broker:1883/a/b", "one device id"),
    ("mqtt://broker:99999/dev", "bad broker port"),
    ("sim://electronic?window=0", "window must be >= 1"),
])
def test_bad_urls_say_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        parse_url(url)
    assert "\n" not in str(info.value)


def test_url_forms_and_stable_ids() -> None:
    u = parse_url("mqtt://alice:s3cret@broker.local:1884/board-7?window=2&n_in=128&n_out=32")
    assert (u.host, u.port, u.target, u["user"], u["password"], u["window"]) == ("broker.local", 1884, "board-7", "alice", "s3cret", 2)
    assert u.id == "mqtt://broker.local:1884/board-7?n_in=128&n_out=32"  # no secrets, no link tuning
    s = parse_url("serial:///dev/ttyACM0?rate=10000&timeout=3")
    assert (s.target, s["rate"], s["timeout"], s["n_in"]) == ("/dev/ttyACM0", 10000, 3.0, 64)
    assert s.id == "serial:///dev/ttyACM0?rate=10000"
    assert parse_url("sim://electronic?seed=3&realtime=1")["realtime"] is True


def test_calibration_maps_floats_to_codes_and_back() -> None:
    cal = Calibration(8, 12, dac_lo=10, dac_hi=210, adc_lo=186, adc_hi=3040)
    codes = cal.encode(np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], np.float32))
    assert codes.dtype == np.dtype("<u2") and codes.tolist() == [[10, 10, 110, 210, 210]]
    assert cal.decode(np.array([[186, 3040, 1613]], np.uint16))[0].tolist() == pytest.approx([0.0, 1.0, 0.5], abs=1e-3)


@pytest.mark.parametrize("ends", [(None, None), (10, 210), (250, 3), (-5, 300)], ids=str)
def test_calibration_encodes_as_the_clipped_rounded_line_does(ends) -> None:
    """encode's in-place ufuncs (and its `clipped` shortcut) give the codes of clip, scale, round, clip."""
    cal = Calibration(8, 12, dac_lo=ends[0], dac_hi=ends[1])
    drive = np.random.default_rng(1).uniform(-0.3, 1.3, (64, 256)).astype(np.float32)
    drive[0] = (np.arange(256) + 0.5) / 256  # half-way codes: rounding must match exactly
    lo, hi = cal.dac_lo, cal.dac_hi
    want = np.clip(np.rint(lo + np.clip(drive, 0.0, 1.0) * (hi - lo)), 0, 255).astype("<u2")
    assert np.array_equal(cal.encode(drive), want)
    assert np.array_equal(cal.encode(np.clip(drive, 0.0, 1.0), clipped=True), want)


def test_sim_device_is_a_physical_system_with_the_boards_physics(quiet: Device) -> None:
    assert isinstance(quiet, pnn.PhysicalSystem) and (quiet.n_in, quiet.n_out) == (32, 8)
    drive = torch.rand(50, 32, generator=torch.Generator().manual_seed(0))
    response, sources = quiet.run_with_sources(drive)
    assert response.dtype == torch.float32 and response.shape == (50, 8)
    assert sources == [quiet.id] * 50
    assert torch.allclose(response, reference(3, drive), atol=CODES)
    caps = quiet.capabilities["caps"]
    assert (caps["dac_bits"], caps["adc_bits"], caps["max_drive"]) == (8, 12, 32)


def test_bad_drives_are_refused_before_anything_is_sent(quiet: Device) -> None:
    before = quiet.stats()["requests"]
    with pytest.raises(ValueError, match=r"shape \[B, 32\]"):
        quiet(torch.rand(4, 31))
    with pytest.raises(ValueError, match="NaN"):
        quiet(torch.full((2, 32), float("nan")))
    with pytest.raises(ValueError, match="torch.Tensor or numpy"):
        quiet([[0.5] * 32])  # type: ignore[arg-type]
    assert quiet.stats()["requests"] == before
    assert quiet(torch.zeros(0, 32)).shape == (0, 8)


def test_lost_replies_are_retried_with_the_same_id_and_never_run_twice() -> None:
    # window=1: each retry reaches the board before any other RUN, so its cached RESULT is still there
    url = QUIET.format(seed=5) + "&drop=0.3&timeout=0.05&retries=20&max_batch=4&window=1"
    with connect(url) as device:
        drive = torch.rand(40, 32, generator=torch.Generator().manual_seed(1))
        response = device(drive)
        stats = device.stats()
        board = device.aio.transport.board
        assert stats["retries"] > 0, "with 30% of replies lost some requests must have been re-sent"
        assert board.runs == stats["requests"] == 10, "a re-sent id is answered from the cache, never re-run"
        assert stats["samples"] == 40
    assert torch.allclose(response, reference(5, drive), atol=CODES)


def test_with_many_requests_in_flight_each_result_is_still_used_once() -> None:
    url = QUIET.format(seed=6) + "&drop=0.3&timeout=0.05&retries=20&max_batch=2&window=4"
    with connect(url) as device:
        drive = torch.rand(40, 32, generator=torch.Generator().manual_seed(3))
        response = device(drive)
        stats = device.stats()
        assert stats["samples"] == 40 and stats["requests"] == 20
        # a retry may come after its RESULT left the board's small cache (then it runs again), but the
        # host takes one reply per request id and ignores any later copy
        assert device.aio.transport.board.runs >= 20
    assert torch.allclose(response, reference(6, drive), atol=CODES)


def test_a_pulled_cable_is_reconnected_and_the_request_completes() -> None:
    url = "sim://electronic?seed=2&n_in=32&n_out=8&noise=off&substeps=1&realtime=1&max_batch=8&heartbeat=0.2"
    with connect(url) as device:
        transport = device.aio.transport
        threading.Timer(0.02, transport.unplug, args=(0.3,)).start()
        drive = torch.rand(64, 32, generator=torch.Generator().manual_seed(2))  # 8 requests of ~14 ms each
        response = device(drive)
        stats = device.stats()
        assert stats["reconnects"] == 1 and stats["connected"]
        assert stats["samples"] == 64
    assert torch.allclose(response, reference(2, drive), atol=CODES)


def test_every_measured_pair_is_recorded_to_the_store(tmp_path) -> None:
    store = DataStore(tmp_path / "pairs")
    with connect(QUIET.format(seed=1), store=store) as device:
        drives = [torch.rand(n, 32) for n in (7, 20, 1)]
        responses = [device(d) for d in drives]
    drive, response = store.load()
    assert np.array_equal(drive, torch.cat(drives).numpy())
    assert np.array_equal(response, torch.cat(responses).numpy())
    assert store.verify() == 28


def test_closed_device_refuses_calls() -> None:
    device = connect(QUIET.format(seed=0))
    device.close()
    device.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        device(torch.rand(1, 32))


def eventually(predicate, seconds: float = 10.0) -> bool:
    """Poll until predicate() is true (a state to reach, not a speed to meet)."""
    done = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return predicate()


def test_heartbeat_detects_a_silent_board_and_reconnects_when_it_answers_again() -> None:
    url = QUIET.format(seed=4) + "&heartbeat=0.05&timeout=0.05"
    with connect(url) as device:
        board = device.aio.transport.board
        board.url.params["drop"] = 0.999  # the board stops answering: PINGs go unanswered
        assert eventually(lambda: not device.aio.connected), "an unanswered heartbeat must drop the link"
        board.url.params["drop"] = 0.0
        assert device(torch.rand(3, 32)).shape == (3, 8)
        assert device.stats()["reconnects"] >= 1


def test_drive_width_and_boot_from_hello_old_and_new() -> None:
    """Firmware that predates them: uint16 drive, no boot id. Newer: uint8 for an 8-bit DAC, and a
    uint8 drive makes room for twice the examples a frame can carry."""
    from pnn.link.codes import Capabilities, boot_id

    caps = {"dac_bits": 8, "adc_bits": 12, "max_drive": 512, "max_batch": 64, "max_out": 512, "max_codes": 1000,
            "min_rate": 1000, "max_rate": 50000, "max_oversample": 64, "max_settle": 100, "max_frame": 2200}
    old = Capabilities.from_hello({"proto": 1, "caps": caps})
    new = Capabilities.from_hello({"proto": 1, "boot": 7, "caps": dict(caps, drive_widths=[1, 2])})
    wide_dac = Capabilities.from_hello({"proto": 1, "caps": dict(caps, dac_bits=12, drive_widths=[1, 2])})
    assert (old.drive_width, old.boot, new.drive_width, new.boot, wide_dac.drive_width) == (2, None, 1, 7, 2)
    assert (old.chunk_limit(100, 10), new.chunk_limit(100, 10), new.chunk_limit(100, 100)) == (10, 20, 10)
    assert boot_id({"boot": True}) is None and boot_id({"boot": 2**32}) is None
    assert Calibration.for_device(new, parse_url("sim://electronic")).encode(np.zeros((1, 2))).dtype == np.uint8
    with pytest.raises(ValueError, match="drive_width=1 cannot carry 12-bit"):
        Calibration(12, 12, drive_width=1)
