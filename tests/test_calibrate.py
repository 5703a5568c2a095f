"""`pnn calibrate`: the ramp on real (simulated) boards, the analysis on readings of known shape, and the
seam into the devices layer (a saved calibration becomes the URL's dac_lo/dac_hi/adc_lo/adc_hi).

Boards: `sim://electronic` (the in-process simulator, with its noise), and the firmware under real
MicroPython on a pty (its sim HAL: the electronic layer behind an ESP32-like DAC and ADC, 1.5 LSB of
ADC noise). On both the "loopback" is that circuit: an inverting transistor stage, cut off at low drive
and saturated at high drive, so the usable range is its middle.
"""

# ruff: noqa: F811 - the cli fixture comes from test_flash
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_flash import cli, one_line  # noqa: F401 - a fixture, used by name

from pnn.boards import calibrate as cal
from pnn.devices import connect

RNG = np.random.default_rng(7)


def readings_of(response, levels=256, sweeps=4, reads=16, noise=2.0, up_shift=0.0, adc_bits=12):
    """A ramp's readings for a response function of the DAC code, with Gaussian read noise."""
    lv = cal.ramp(8, levels)
    order, up = cal.sweep_order(lv, sweeps)
    clean = response(lv[order].astype(float)) + up_shift * up
    raw = clean[:, None] + noise * RNG.standard_normal((len(order), reads))
    return lv, order, up, np.clip(np.rint(raw), 0, 2**adc_bits - 1).astype(np.int64)


# -- the analysis, on readings of known shape ----------------------------------------------------


def test_a_straight_loopback_clipped_at_both_rails():
    lv, order, up, rd = readings_of(lambda c: 16.5 * c - 100)  # reads 0 below code 6, the top code above 254
    r = cal.analyse(lv, order, up, rd, 8, 12)
    u = r["usable"]
    assert 6 <= u["dac_lo"] <= 10 and 246 <= u["dac_hi"] <= 254
    assert r["gain"] == pytest.approx(16.5, abs=0.02) and r["offset"] == pytest.approx(-100, abs=2)
    assert r["noise_codes"] == pytest.approx(2.0, rel=0.1) and r["noise_fs"] == pytest.approx(2.0 / 4095, rel=0.1)
    assert r["linearity_fs"] < 0.001 and r["hysteresis_codes"] < 2
    assert u["adc_lo"] == pytest.approx(16.5 * u["dac_lo"] - 100, abs=2)
    assert r["clipped"][0] and r["clipped"][-1] and not r["clipped"][128]


def test_an_inverting_stage_with_flat_ends_uses_the_sloped_middle():
    lv, order, up, rd = readings_of(lambda c: np.clip(3000 - 20 * (c - 60), 1000, 3000), noise=5)
    r = cal.analyse(lv, order, up, rd, 8, 12)
    u = r["usable"]
    assert 58 <= u["dac_lo"] <= 63 and 157 <= u["dac_hi"] <= 162  # the slope runs from 60 to 160
    assert r["gain"] == pytest.approx(-20, rel=0.02) and u["adc_lo"] > u["adc_hi"]


def test_a_response_that_turns_back_keeps_its_longest_monotone_branch():
    lv, order, up, rd = readings_of(lambda c: 1000 + 15 * np.abs(c - 90))  # down to code 90, then up
    u = cal.analyse(lv, order, up, rd, 8, 12)["usable"]
    assert u["dac_lo"] >= 88 and u["dac_hi"] == 255


def test_a_flat_response_has_no_usable_range(tmp_path):
    lv, order, up, rd = readings_of(lambda c: 0 * c + 2000, noise=3)
    r = cal.analyse(lv, order, up, rd, 8, 12)
    assert r["usable"] is None and r["gain"] is None and r["noise_codes"] == pytest.approx(3, rel=0.15)
    result = {**r, "device": "flat-1", "board": "esp32", "fw": "x", "sweeps": 4, "reads": 16}
    assert "no usable range" in cal.summary(result)
    json_path, png_path = cal.save(result, tmp_path)  # kept all the same: nothing measured is lost
    assert json.loads(json_path.read_text())["mean"][3] == pytest.approx(2000, abs=3) and png_path.stat().st_size > 5000
    with pytest.raises(ValueError, match="no usable range"):
        cal.to_calibration(result)


def test_up_and_down_sweeps_that_differ_show_as_hysteresis():
    lv, order, up, rd = readings_of(lambda c: 15.0 * c + 20, up_shift=6.0, noise=1.0)
    assert cal.analyse(lv, order, up, rd, 8, 12)["hysteresis_codes"] == pytest.approx(6, abs=1.2)


def test_measurement_url_asks_for_raw_codes_and_one_bin_per_tick():
    s = cal.Settings(hold_ms=5)
    url = cal.measurement_url("serial:///dev/ttyACM0?rate=10000&dac_lo=20&adc_hi=3000&n_in=8&n_out=4&baud=9600", s)
    assert url == "serial:///dev/ttyACM0?rate=10000&baud=9600&n_in=50&n_out=50&reconnect=2"
    assert "reconnect=7" in cal.measurement_url("mqtt://h:1883/b?reconnect=7", s)
    assert cal.measurement_url("sim://electronic", s) == "sim://electronic?n_in=100&n_out=100&reconnect=2"


# -- on boards -----------------------------------------------------------------------------------


def test_calibrate_a_simulated_board_saves_json_and_plot_per_device(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PNN_CONFIG_DIR", str(tmp_path / "config"))
    r = cli("calibrate", "sim://electronic?seed=1", "--levels", "128", "--sweeps", "2")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "config" / "calibration"
    saved = json.loads((folder / "sim-electronic-1.json").read_text())
    assert (folder / "sim-electronic-1.png").stat().st_size > 10_000
    assert saved["device"] == "sim-electronic-1" and saved["board"] == "sim" and saved["url"] == "sim://electronic"
    u = saved["usable"]
    # the transistor turns on near code 45 and saturates near 165 (noise-free runs put them at 44 and 167)
    assert 36 <= u["dac_lo"] <= 56 and 150 <= u["dac_hi"] <= 176 and u["adc_lo"] > u["adc_hi"]
    assert -20 < saved["gain"] < -12
    assert saved["noise_fs"] == pytest.approx(0.02, rel=0.25)  # the simulator's 2 % additive read noise
    assert len(saved["levels"]) == 128 and saved["sweeps"] == 2 and saved["reads"] == 100
    assert f"use it: sim://electronic?seed=1&{saved['url_params']}" in r.stdout
    assert str(folder / "sim-electronic-1.json") in r.stdout


def test_a_saved_calibration_maps_drive_0_and_1_onto_the_usable_range(cli, tmp_path):
    url = "sim://electronic?seed=4&noise=off"
    assert cli("calibrate", url, "--out", str(tmp_path), "--levels", "64", "--sweeps", "2").returncode == 0
    saved = cal.load("sim-electronic-4", tmp_path)
    u = saved["usable"]
    c = cal.to_calibration(saved)
    assert c.encode(np.array([[0.0, 1.0]])).tolist() == [[u["dac_lo"], u["dac_hi"]]]
    assert c.decode(np.array([u["adc_lo"], u["adc_hi"]], "<u2")).tolist() == [0.0, 1.0]
    # the seam: the same numbers as URL parameters of the devices layer, on the board itself
    with connect(cal.calibrated_url(url + "&n_in=200&n_out=4", saved)) as board:
        response = board(torch.tensor([[0.0] * 200, [1.0] * 200]))
    assert response[0, -1].item() == pytest.approx(0.0, abs=0.02)
    assert response[1, -1].item() == pytest.approx(1.0, abs=0.02)


def test_load_names_the_missing_calibration(tmp_path):
    with pytest.raises(FileNotFoundError, match="run pnn calibrate URL first"):
        cal.load("esp32-1", tmp_path)


def test_calibrate_the_firmware_under_micropython_on_a_pty(cli, firmware_serial, tmp_path):
    fw = firmware_serial(cable=True)
    r = cli("calibrate", f"serial://{fw.host_path}", "--out", str(tmp_path), "--levels", "64", "--sweeps", "2")
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "sim-0.json").read_text())
    assert saved["board"] == "sim" and saved["proto"] == 1 and saved["url"] == f"serial://{fw.host_path}"
    u = saved["usable"]
    assert 36 <= u["dac_lo"] <= 56 and 150 <= u["dac_hi"] <= 176 and saved["gain"] < 0
    assert saved["noise_codes"] == pytest.approx(1.5, rel=0.2)  # the sim HAL's adc_noise_lsb
    assert saved["hysteresis_codes"] < 2
    assert "usable range: DAC" in r.stdout and "noise 1." in r.stdout


def test_calibrate_the_firmware_over_mqtt(cli, firmware_mqtt, mosquitto, tmp_path):
    host, port = mosquitto
    firmware_mqtt(mosquitto, device_id="sim-mq", seed=5)
    url = f"mqtt://{host}:{port}/sim-mq"
    r = cli("calibrate", url, "--out", str(tmp_path), "--levels", "32", "--sweeps", "2")
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "sim-mq.json").read_text())
    assert saved["url"] == url and saved["usable"] is not None and saved["gain"] < 0
    assert f"use it: {url}?dac_lo=" in r.stdout


def test_a_board_lost_mid_ramp_is_one_line_saying_how_far_it_got(firmware_serial, tmp_path):
    fw = firmware_serial(cable=True)

    def pull_the_plug(done: int, total: int) -> None:
        if done == 64:
            fw.proc.kill()  # as a board that loses power: no goodbye

    with pytest.raises(cal.BoardLost) as e:
        url = f"serial://{fw.host_path}?reconnect=0.5&timeout=0.3&retries=0"  # give up on it quickly
        cal.calibrate(url, cal.Settings(levels=64, sweeps=4), pull_the_plug)
    assert f"serial://{fw.host_path} stopped answering after 64 of 256 holds" in str(e.value)
    assert "run pnn calibrate again" in str(e.value) and "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())
