"""Hardware-paced sampling on the emulated Pico (tests/_emu.py): the rp2040 HAL's DMA path (ADC free-running
from its divider, drained on DREQ_ADC; the PWM compare fed on DMA TIMER0) at 100 kS/s, five times what the
ticks_us loop reaches, checked from the circuit plugin's log of emulated ADC conversion times; and a new
boot id after a reset on a chip whose os.urandom and unique_id are constants.
"""

from __future__ import annotations

import struct
import time

import _emu
import numpy as np
import pytest

from pnn.boards.knock import knock, wait_for_firmware
from pnn.link.sync import SyncClient, open_serial
from pnn_protocol import frame, messages, packb

RATE = 100_000
# The DMA clock is the emulated 125 MHz sys clock and 48 MHz ADC clock: every interval is exact to the ns
# in emulated time. A real board adds at most one ADC clock (21 ns) of fractional-divider dither.
JITTER_US = 0.05


@pytest.fixture(scope="module")
def flashed(tmp_path_factory):
    """A fresh emulated Pico after `pnn flash PTY --board rp2040` (the DMA pacing is the default)."""
    from pnn.cli import main

    emu = _emu.boot(tmp_path_factory.mktemp("dma"))
    try:
        assert main(["flash", emu.tty, "--board", "rp2040"]) == 0
        yield emu
    finally:
        emu.stop()


def _client(tty: str) -> SyncClient:
    # the emulator runs at 0.05-0.2x real time under load, and a reply may queue behind a boot
    return SyncClient(open_serial(tty), timeout=600)


def test_hello_says_the_dma_maximum_rate(flashed):
    c = _client(flashed.tty)
    try:
        caps = c.hello()["caps"]
    finally:
        c.close()
    assert caps["max_rate"] == 500_000, caps  # the ADC's 96-cycle conversion at 48 MHz
    assert "dma" in caps["hal"]["pacing"] and "ticks_us <= 18000" in caps["hal"]["pacing"], caps["hal"]


@pytest.mark.parametrize("rate", [RATE, 10_000])
def test_a_run_is_paced_by_the_dma_without_jitter_and_follows_the_circuit(flashed, rate):
    """At 100 kS/s (the ticks_us loop reaches ~19.4 kS/s flat out: it refuses this RUN) and at 10 kS/s, where one tick
    of misalignment between the drive and its samples is half a period of the circuit's 5 kHz resonance."""
    pico = flashed
    n_drive, settle, n_out, batch = 64, 32, 16, 2
    codes = np.array([[230] * 32 + [20] * 32, [0] * 16 + [128] * 48])
    since = len(pico.conversions())
    c = _client(pico.tty)
    try:
        c.hello()
        drive = struct.pack(f"<{codes.size}H", *codes.ravel())
        # an id of its own: the board answers a RUN whose id its RESULT cache holds from the cache
        r = c.run(drive, batch, n_drive, rate, settle=settle, n_out=n_out, req_id=1000 + rate // 1000)
    finally:
        c.close()
    assert r["period_us"] == 1e6 / rate and r["overruns"] == 0, r
    stamps = np.array(pico.conversions()[since:], dtype=np.int64)
    # per example: a conversion for every tick (settle included), the closing rest write, and LAG
    per = settle + n_drive + 2
    assert len(stamps) == batch * per, len(stamps)
    for b in range(batch):
        d_us = np.diff(stamps[b * per : (b + 1) * per]) / 1e3
        assert 1e6 / d_us.mean() == pytest.approx(rate, rel=1e-3)
        assert np.abs(d_us - 1e6 / rate).max() <= JITTER_US, d_us
    got = np.frombuffer(r["resp"], "<u2").reshape(batch, n_out).astype(float)
    want, noise = _emu.circuit_bins(pico.table, codes, settle, rate, n_out)  # the same unit on the host
    assert got.min() > 100  # the circuit, not an ADC reading nothing
    rms = np.sqrt(np.mean((got - want) ** 2))
    assert rms < 2 * noise + 10, (rms, noise, got, want)
    # each bin holds the samples that close its codes' holds: the model one tick late or early fits worse
    late = np.concatenate([np.zeros((batch, 1)), codes[:, :-1]], axis=1)
    early = np.concatenate([codes[:, 1:], codes[:, -1:]], axis=1)
    for shifted in (late, early):
        other = _emu.circuit_bins(pico.table, shifted, settle, rate, n_out)[0]
        assert rms < np.sqrt(np.mean((got - other) ** 2)), (rms, got, want, other)


def test_a_reset_gives_a_new_boot_id_on_a_chip_without_randomness(flashed):
    pico = flashed
    before = knock(pico.tty, timeout=60)
    assert before.kind == "pnn", before.describe()
    since = pico.log.stat().st_size
    link = open_serial(pico.tty)  # the protocol's hard RESET: machine.reset() after its ack
    try:
        link.write_raw(b"\x00" + frame(packb(messages.reset(5, hard=True))))
        time.sleep(0.5)
    finally:
        link.close()
    pico.wait_ready(since)
    after = wait_for_firmware(pico.tty, 600)
    assert after.kind == "pnn", after.describe()
    # before the boot counter, both were the same constant: rp2040js has no ROSC randomness
    assert after.reply["boot"] != before.reply["boot"], (before.reply, after.reply)
