"""The hobbyist path on an emulated Pico: the real MicroPython rp2 firmware in rp2040js (tests/_emu.py),
the electronic layer (firmware/emu/electronic.mjs) between GP15's PWM and ADC0.

One emulator serves the whole module (a boot and a flash cost about a minute on a loaded 2-core host); the
tests run in file order: flash, devices, a RUN's bytes against protocol/SPEC.md, pacing, calibrate, a reset, a twin fit
and short PAT training.
"""

from __future__ import annotations

import json
import time
import zlib

import _emu
import msgpack
import numpy as np
import pytest
from test_protocol import _cobs_ref_decode

from pnn.boards.knock import knock
from pnn.link.sync import open_serial
from pnn.physics import Electronic, Noise
from pnn_protocol import frame, messages, packb

QUIET = Noise(additive=0.0, multiplicative=0.0, drift=0.0, dac_bits=None, adc_bits=None, variation=1.0)


@pytest.fixture(scope="module")
def pico(tmp_path_factory):
    emu = _emu.boot(tmp_path_factory.mktemp("pico"))
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def flashed(pico):
    """The emulated Pico after `pnn flash PTY --board rp2040` (the first test checks how that went)."""
    from pnn.cli import main

    t0 = time.monotonic()
    code = main(["flash", pico.tty, "--board", "rp2040"])
    pico.flash_s = time.monotonic() - t0
    return code


def test_pnn_flash_copies_the_firmware_and_confirms_hello_after_the_reset(pico, flashed, capsys):
    # Before the boot wait followed the board's measured compile speed, this failed: the emulated
    # Pico needs ~15-30 s of wall time from reset to HELLO and the wait was a fixed 10 s.
    assert flashed == 0
    k = knock(pico.tty, timeout=30)
    assert k.kind == "pnn" and k.reply["board"] == "rp2040", k.describe()


def test_pnn_devices_lists_the_board_with_its_caps(pico, flashed, run_cli):
    # Right after a flash the board first answers the HELLOs queued while it booted. The knock that sizes
    # the slow-board re-probe took one of those stale replies for its own (~0.2 s) and the re-probe's
    # timeouts were far too short: no HELLO for 25 s. The knock now waits for the reply to its own id.
    r = run_cli("devices", "--serial", pico.tty, "--no-scan", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    row = next(x for x in rows if pico.tty in json.dumps(x))
    text = json.dumps(row)
    assert "rp2040" in text and "pico-1" in text


def _frames(link, timeout: float):
    """Each run of bytes between two 0x00 delimiters, in order (empty frames skipped)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf += link.read_raw(min(1.0, max(0.0, deadline - time.monotonic())))
        *done, buf = buf.split(b"\x00")
        yield from (f for f in done if f)
    raise TimeoutError(f"no frame in {timeout} s (got {buf[:80]!r})")


def test_a_run_answers_with_a_result_whose_bytes_follow_the_spec_and_the_circuit(pico, flashed):
    rate, n_drive, settle, n_out, batch = 5000, 32, 64, 8, 2
    codes = np.array([[230] * 16 + [20] * 16, [0] * 8 + [128] * 24], dtype="<u2")
    req = messages.run(77, codes.tobytes(), batch, n_drive, rate, 1, settle, n_out)
    link = open_serial(pico.tty)
    try:
        link.write_raw(b"\x00" + frame(packb(req)))
        # the board's own estimate of its work: batch*(settle+n_drive)/rate s of emulated time; the
        # emulator runs 0.05-0.2x real time under load, plus the frame transfers
        for raw in _frames(link, 600):  # frames left over from earlier exchanges (an ERROR about a CR) first
            body = _cobs_ref_decode(raw)  # COBS as SPEC.md section 1 defines it, not pnn_protocol's
            payload, crc = body[:-4], int.from_bytes(body[-4:], "little")
            assert zlib.crc32(payload) == crc
            msg = msgpack.unpackb(payload, raw=False)
            if msg.get("id") == 77:
                break
            assert msg["t"] == "error" and msg["id"] is None, msg
    finally:
        link.close()
    assert set(msg) == {"v", "t", "id", "resp", "batch", "n_out", "period_us", "overruns"}
    assert (msg["v"], msg["t"], msg["id"], msg["batch"], msg["n_out"]) == (1, "result", 77, batch, n_out)
    assert isinstance(msg["resp"], bytes) and len(msg["resp"]) == 2 * batch * n_out
    assert msg["period_us"] == pytest.approx(1e6 / rate, rel=0.02)
    got = np.frombuffer(msg["resp"], "<u2").reshape(batch, n_out).astype(float)
    want, noise_codes = _emu.circuit_bins(pico.table, codes, settle, rate, n_out)  # the same unit on the host
    assert np.sqrt(np.mean((got - want) ** 2)) < 3 * noise_codes + 20, (got, want)
    assert got[0, :4].mean() < got[0, 4:].mean() - 300  # high drive saturates the stage: OUT falls


def test_conversions_are_paced_at_the_requested_rate(pico, flashed):
    """The plugin logs each ADC0 conversion's emulated start: the last RUN sampled at 5 kS/s."""
    stamps = np.array(pico.conversions(), dtype=np.int64)
    assert len(stamps) >= 64
    period = np.diff(stamps[-32:]) / 1e3
    assert np.median(period) == pytest.approx(200.0, rel=0.02)


def _dc_codes(pico, codes: np.ndarray) -> np.ndarray:
    """ADC codes the plugin's unit settles to for each held PWM code (host model, noiseless)."""
    model = Electronic(200, seed=_emu.UNIT_SEED, noise=QUIET, sample_rate=20_000)
    vout = model.waveform(3.3 * np.repeat(codes[:, None], 200, 1) / 256)[:, -1]
    adc = pico.table["adc"]
    return vout * adc["gain"] / adc["vref"] * 4095


def test_pnn_calibrate_finds_the_plugin_circuits_gain_offset_and_noise(pico, flashed, run_cli, tmp_path):
    url = f"serial://{pico.tty}?rate=5000&timeout=120"
    r = run_cli("calibrate", url, "--levels", "16", "--sweeps", "2", "--hold-ms", "4", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(next(tmp_path.rglob("*.json")).read_text())
    use = result["usable"]
    assert use is not None, result
    levels = np.array(result["levels"])
    sel = (levels >= use["dac_lo"]) & (levels <= use["dac_hi"])
    gain, offset = np.polyfit(levels[sel], _dc_codes(pico, levels[sel].astype(float)), 1)
    assert gain < 0  # the common-emitter stage inverts: more drive, lower OUT
    assert result["gain"] == pytest.approx(gain, rel=0.15)
    assert result["offset"] == pytest.approx(offset, abs=0.03 * 4095)
    # readout noise: the plugin adds noise_v (the host model's additive noise in volts) per conversion
    assert result["noise_codes"] == pytest.approx(pico.table["noise_v"] / 3.3 * 4095, rel=0.3)


def reset_through_the_repl(tty: str, log) -> None:
    """The REPL request, then `machine.reset()` typed at the REPL until the emulator says the chip reset
    (pty_bridge cold-boots a fresh emulator on the same pty, with the flash kept)."""
    at = log.stat().st_size
    link = open_serial(tty)
    try:
        link.write_raw(b"\x00" + frame(packb(messages.repl(9))))
        deadline = time.monotonic() + 300
        while b"chip reset" not in log.read_bytes()[at:]:
            assert time.monotonic() < deadline, "the board never reset"
            link.write_raw(b"\r\nimport machine; machine.reset()\r\n")
            time.sleep(2)
    finally:
        link.close()


def survives_a_reset(tty: str, log, noise_v: float) -> None:
    """One session measures, the board is reset, the session measures again while the board boots."""
    from pnn.devices import connect

    url = f"serial://{tty}?n_in=16&n_out=4&rate=5000&settle=16&timeout=120&reconnect=600&heartbeat=0&patience=300"
    # drive code 3 (3/255 on the 8-bit PWM): the RUN frame, re-sent while the board boots, carries a 0x03
    # byte, which stopped main.py at its imports (KeyboardInterrupt) before Ctrl-C was switched off first
    drive = np.concatenate([np.full((1, 8), 0.9), np.full((1, 8), 3 / 255)], axis=1).astype(np.float32)
    with connect(url) as dev:
        before = np.asarray(dev(drive))
        reset_through_the_repl(tty, log)
        after = np.asarray(dev(drive))
    noise = noise_v / 3.3 / np.sqrt(4)
    assert np.abs(after - before).max() < 6 * noise + 0.01, (before, after)
    assert after[0, 0] < after[0, 3]  # still the circuit: saturated under high drive, recovering after


def test_a_session_survives_a_machine_reset_through_the_repl_request(pico, flashed):
    survives_a_reset(pico.tty, pico.log, pico.table["noise_v"])


def test_a_twin_fit_and_a_short_pnn_train_beat_chance_on_the_emulated_pico(pico, flashed, run_cli, tmp_path):
    toml = tmp_path / "emulated.toml"
    toml.write_text(_emu.experiment_toml(pico.tty))
    # last in the module: `pnn train` run in-process leaves its board link open (experiment.run does not
    # close the system), and that link's reader then takes replies meant for a later session on the pty
    r = run_cli("train", str(toml), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr + r.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # the twin explains the circuit's response far better than its mean does (NRMSE 1), and PAT on the
    # board beats chance (1/7) by a wide margin (the simulated unit reaches ~70 % with these settings)
    assert summary["twin_nrmse"] < 0.7, summary
    assert summary["accuracy"]["pat"] > 2.5 / 7, summary
