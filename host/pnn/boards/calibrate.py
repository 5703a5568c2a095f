"""`pnn calibrate`: a DAC -> ADC loopback ramp, and what it says about a board's converters.

The board plays each DAC code of a ramp for a hold time (`hold` ticks, one RUN example per level) and
returns every ADC reading of it (n_out = n_in: one bin per tick). The last `reads` ticks of each hold
are the settled readings. The ramp runs up and down `sweeps` times, so each level is read
sweeps x reads times, on either side of it. From that (`analyse`):

- usable range: the longest run of levels where the response is not clipped (< 1 % of its reads at
  ADC code 0 or the top code) and moves with the drive: the local slope (a straight-line fit over a
  few neighbouring levels) has the ramp's overall sign, is 3 standard errors clear of zero and at
  least 20 % of the steepest; neighbouring levels never step back by more than 3 standard errors.
- gain, offset: a straight line through the level means in that range (ADC codes per DAC code, and
  the line's ADC code at DAC code 0); `linearity_fs` is its largest residual over the ADC full scale.
- noise: the median over the usable levels of the standard deviation of a level's reads, in ADC
  codes and as a fraction of the ADC full scale.
- hysteresis: the largest up-sweep minus down-sweep difference in the usable range, in ADC codes.

The result is saved per device id (the `device` its HELLO reports) as JSON with a PNG plot, under
`$PNN_CONFIG_DIR/calibration` (default ~/.config/pnn/calibration). It plugs into the devices layer
through the URL parameters it already has (dac_lo, dac_hi, adc_lo, adc_hi: `calibrated_url`), or as
a `pnn.devices` Calibration (`to_calibration`): drive 0..1 then spans the usable DAC codes and
response 0..1 the ADC codes read at their ends.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np

from ..link.codes import Calibration
from ..link.errors import UserError
from ..link.url import parse_url

CONFIG_ENV = "PNN_CONFIG_DIR"
CALIBRATION_KEYS = ("dac_lo", "dac_hi", "adc_lo", "adc_hi")
CLIP_FRACTION = 0.01  # a level with more of its reads at a rail than this is clipped
SLOPE_FRACTION = 0.2  # a level is responsive where its local slope is at least this share of the steepest
SIGMAS = 3.0
BLOCK = 32  # examples per measuring call: the progress bar moves this often


class BoardLost(UserError, ConnectionError):
    """The board stopped answering in the middle of the ramp (the message says how far it got)."""


class CalibrationError(UserError, ValueError):
    """A setting out of range, or a calibration with no usable range; the message says how to mend it."""


@dataclass(frozen=True)
class Settings:
    """How to ramp.

    Attributes:
        levels: DAC codes on the ramp, evenly spaced from 0 to the top code (capped at every code).
        sweeps: ramps played, alternately up and down (>= 2 to compare the two directions).
        hold_ms: how long each level is held; the loopback RC needs ~10 time constants to settle.
        reads: settled ticks read at the end of each hold (0: the second half of the hold).
    """

    levels: int = 256
    sweeps: int = 4
    hold_ms: float = 10.0
    reads: int = 0

    def __post_init__(self) -> None:
        if self.levels < 3:
            raise CalibrationError(f"--levels must be >= 3, got {self.levels}")
        if self.sweeps < 1:
            raise CalibrationError(f"--sweeps must be >= 1, got {self.sweeps}")
        if not self.hold_ms > 0:
            raise CalibrationError(f"--hold-ms must be > 0, got {self.hold_ms}")
        if self.reads < 0:
            raise CalibrationError(f"--reads must be >= 0, got {self.reads}")


# -- where calibrations live -------------------------------------------------------------------


def config_dir() -> Path:
    """$PNN_CONFIG_DIR, else ~/.config/pnn."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else Path.home() / ".config" / "pnn"


def calibration_dir(out: str | Path | None = None) -> Path:
    return Path(out) if out else config_dir() / "calibration"


def file_stem(device_id: str) -> str:
    """A file name for a device id (ids are free text on the board: keep it to safe characters)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id).strip(".") or "device"


def load(device_id: str, folder: str | Path | None = None) -> dict[str, Any]:
    """The saved calibration of `device_id` (FileNotFoundError says how to make one)."""
    path = calibration_dir(folder) / f"{file_stem(device_id)}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no calibration for {device_id!r} at {path}; run pnn calibrate URL first")
    return json.loads(path.read_text())


def to_calibration(saved: dict[str, Any]) -> Calibration:
    """The devices layer's float <-> code map for a saved calibration (drive 0..1 = the usable range)."""
    usable = saved.get("usable")
    if not usable:
        raise CalibrationError(f"the calibration of {saved.get('device')!r} found no usable range; re-run pnn calibrate")
    return Calibration(saved["dac_bits"], saved["adc_bits"], *(int(usable[k]) for k in CALIBRATION_KEYS))


def calibrated_url(url: str, saved: dict[str, Any]) -> str:
    """`url` with the calibration's dac_lo/dac_hi/adc_lo/adc_hi parameters (replacing any given)."""
    usable = saved.get("usable")
    if not usable:
        raise CalibrationError(f"the calibration of {saved.get('device')!r} found no usable range; re-run pnn calibrate")
    return with_params(url, {k: int(usable[k]) for k in CALIBRATION_KEYS}, drop=CALIBRATION_KEYS)


def with_params(url: str, params: dict[str, Any], drop: tuple[str, ...] = (), defaults: dict[str, Any] | None = None) -> str:
    """`url` with query parameters dropped, set, or added only where not given."""
    base, _, text = url.partition("?")  # not urlsplit/urlunsplit: they turn serial:///dev/x into serial:/dev/x
    query = [(k, v) for k, v in parse_qsl(text, keep_blank_values=True) if k not in drop and k not in params]
    given = {k for k, _ in query}
    query += [(k, str(v)) for k, v in params.items()]
    query += [(k, str(v)) for k, v in (defaults or {}).items() if k not in given]
    return f"{base}?{urlencode(query, safe='/:')}" if query else base


# -- measuring ---------------------------------------------------------------------------------


def ramp(dac_bits: int, n: int) -> np.ndarray:
    """n DAC codes evenly spaced over the full range (every code when there are fewer than n)."""
    top = 2**dac_bits - 1
    return np.unique(np.rint(np.linspace(0, top, min(n, top + 1))).astype(np.int64))


def sweep_order(levels: np.ndarray, sweeps: int) -> tuple[np.ndarray, np.ndarray]:
    """(level index of each example, whether it belongs to an up sweep): up, down, up, ..."""
    idx = np.arange(len(levels))
    order = [idx if s % 2 == 0 else idx[::-1] for s in range(sweeps)]
    up = [np.full(len(levels), s % 2 == 0) for s in range(sweeps)]
    return np.concatenate(order), np.concatenate(up)


def hold_ticks(rate: int, settings: Settings) -> tuple[int, int]:
    """(ticks per hold, settled reads per hold) at `rate` samples/s."""
    hold = max(4, round(settings.hold_ms * 1e-3 * rate))
    reads = settings.reads or max(1, hold // 2)
    if reads > hold:
        raise CalibrationError(f"--reads {reads} is more than the {hold} ticks of a hold; raise --hold-ms or lower --reads")
    return hold, reads


def measurement_url(url: str, settings: Settings) -> str:
    """The URL to measure with: one example = one hold, one bin per tick, raw codes, a short reconnect."""
    rate = parse_url(url)["rate"]  # a bad URL fails here, with the accepted forms
    hold, _ = hold_ticks(rate, settings)
    return with_params(url, {"n_in": hold, "n_out": hold}, drop=CALIBRATION_KEYS, defaults={"reconnect": 2})


def measure(device: Any, codes: np.ndarray, reads: int, on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Play each code of `codes` for one hold; returns the last `reads` ADC codes of each, int [len(codes), reads].

    Args:
        device: a connected pnn Device (raw codes: no dac_lo/... parameters in its URL).
        codes: DAC codes, one example each, in the order to play them.
        on_progress: called with (examples done, examples in all) after each block.
    """
    caps = device.capabilities["caps"]
    dac_top, adc_top = 2 ** caps["dac_bits"] - 1, 2 ** caps["adc_bits"] - 1
    out = np.empty((len(codes), reads), np.int64)
    for start in range(0, len(codes), BLOCK):
        block = codes[start : start + BLOCK]
        drive = np.repeat((block / dac_top)[:, None], device.n_in, 1).astype(np.float32)
        response = np.asarray(device(drive))
        out[start : start + len(block)] = np.rint(response[:, -reads:] * adc_top)
        if on_progress is not None:
            on_progress(start + len(block), len(codes))
    return out


# -- what the readings say ---------------------------------------------------------------------


def _local_slopes(x: np.ndarray, m: np.ndarray, se: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope of m over x in a window of +-half levels, and its standard error."""
    slope, slope_se = np.zeros(len(x)), np.full(len(x), np.inf)
    for k in range(len(x)):
        w = slice(max(0, k - half), min(len(x), k + half + 1))
        dx = x[w] - x[w].mean()
        sxx = float(dx @ dx)
        if sxx > 0:
            slope[k] = float(dx @ (m[w] - m[w].mean())) / sxx
            slope_se[k] = float(np.sqrt(np.sum((dx / sxx) ** 2 * se[w] ** 2)))
    return slope, slope_se


def _standard_errors(readings: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """Standard error of each level's mean.

    Reads within one hold share that example's gain jitter and drift, so they are not independent:
    the spread of the per-example means counts too, and the median over levels keeps a level whose
    few examples happened to agree from looking more certain than its neighbours.
    """
    se = np.zeros(n)
    for k in range(n):
        rows = readings[order == k].astype(np.float64)
        within = rows.std(ddof=1) / np.sqrt(rows.size) if rows.size > 1 else 0.0
        between = rows.mean(1).std(ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else 0.0
        se[k] = max(within, between)
    return np.maximum(se, np.median(se))


def _longest_run(ok: np.ndarray) -> tuple[int, int] | None:
    """(first, last) index of the longest run of True, or None."""
    best, start = None, None
    for k, flag in enumerate([*ok, False]):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            if best is None or k - start > best[1] - best[0] + 1:
                best = (start, k - 1)
            start = None
    return best


def analyse(levels: np.ndarray, order: np.ndarray, up: np.ndarray, readings: np.ndarray, dac_bits: int,
            adc_bits: int) -> dict[str, Any]:  # fmt: skip
    """Gain, offset, noise, usable range and hysteresis from a ramp's readings (see the module doc).

    Args:
        levels: the DAC codes of the ramp, ascending.
        order, up: per example, its level index and whether it was on an up sweep (`sweep_order`).
        readings: ADC codes, [examples, reads].

    Returns:
        A JSON-ready dict: gain, offset, noise_codes, noise_fs, usable ({dac_lo, dac_hi, adc_lo, adc_hi}
        or None), linearity_fs, hysteresis_codes, and per level: levels, mean, std, up, down, clipped.
    """
    adc_top = 2**adc_bits - 1
    n = len(levels)
    per_level = [readings[order == k].ravel().astype(np.float64) for k in range(n)]
    mean = np.array([r.mean() for r in per_level])
    std = np.array([r.std(ddof=1) if r.size > 1 else 0.0 for r in per_level])
    se = _standard_errors(readings, order, n)
    clipped = np.array([np.mean((r <= 0) | (r >= adc_top)) > CLIP_FRACTION for r in per_level])
    sweep_mean = {d: np.array([readings[(order == k) & (up == d)].mean() if np.any((order == k) & (up == d))
                               else np.nan for k in range(n)]) for d in (True, False)}  # fmt: skip
    x = levels.astype(np.float64)

    usable = None
    free = ~clipped
    direction = np.sign(np.polyfit(x[free], mean[free], 1)[0]) if free.sum() >= 2 else 0.0
    if direction != 0:
        slope, slope_se = _local_slopes(x, mean, se, max(2, n // 64))
        along = direction * slope
        ok = free & (along > SIGMAS * slope_se) & (along >= SLOPE_FRACTION * along.max())
        # monotone: no step back between neighbours beyond the noise
        back = direction * np.diff(mean) < -SIGMAS * np.hypot(se[:-1], se[1:])
        ok[:-1] &= ~back
        ok[1:] &= ~back
        run = _longest_run(ok)
        if run is not None and run[1] - run[0] >= 2:
            usable = run

    result: dict[str, Any] = {"dac_bits": dac_bits, "adc_bits": adc_bits}
    if usable is None:
        result.update(gain=None, offset=None, linearity_fs=None, hysteresis_codes=None, usable=None,
                      noise_codes=float(np.median(std)))  # fmt: skip
    else:
        a, b = usable
        sel = slice(a, b + 1)
        gain, offset = np.polyfit(x[sel], mean[sel], 1)
        residual = mean[sel] - (gain * x[sel] + offset)
        hysteresis = np.abs(sweep_mean[True][sel] - sweep_mean[False][sel])
        result.update(
            gain=float(gain), offset=float(offset), linearity_fs=float(np.abs(residual).max() / adc_top),
            hysteresis_codes=float(np.nanmax(hysteresis)) if np.isfinite(hysteresis).any() else None,
            usable={"dac_lo": int(levels[a]), "dac_hi": int(levels[b]), "adc_lo": int(round(mean[a])),
                    "adc_hi": int(round(mean[b]))},
            noise_codes=float(np.median(std[sel])),
        )  # fmt: skip
    result["noise_fs"] = result["noise_codes"] / adc_top

    def listed(a: np.ndarray) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), 3) for v in a]

    result.update(levels=[int(v) for v in levels], mean=listed(mean), std=listed(std), up=listed(sweep_mean[True]),
                  down=listed(sweep_mean[False]), clipped=[bool(c) for c in clipped])  # fmt: skip
    return result


def summary(result: dict[str, Any]) -> str:
    """The numbers, in a few lines for the terminal."""
    lines = [f"device {result['device']} (board {result['board']}, firmware {result['fw']}): "
             f"{len(result['levels'])} levels x {result['sweeps']} sweeps x {result['reads']} reads"]  # fmt: skip
    u = result["usable"]
    if u is None:
        lines.append(f"no usable range: the response does not follow the drive (noise {result['noise_codes']:.2f} codes)")
        return "\n".join(lines)
    lines += [
        f"usable range: DAC {u['dac_lo']}..{u['dac_hi']} -> ADC {u['adc_lo']}..{u['adc_hi']}",
        f"gain {result['gain']:.4g} ADC codes per DAC code, offset {result['offset']:.1f} codes "
        f"(largest residual {100 * result['linearity_fs']:.2f} % of full scale)",
        f"noise {result['noise_codes']:.2f} codes RMS = {100 * result['noise_fs']:.3f} % of full scale",
    ]
    if result.get("hysteresis_codes") is not None:
        lines.append(f"up vs down sweeps: at most {result['hysteresis_codes']:.2f} codes apart")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Response vs drive code: each level's mean +- std, the up and down sweeps, the fit, the usable range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array(result["levels"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(x, np.array(result["mean"], dtype=float), yerr=np.array(result["std"], dtype=float), fmt=".",
                ms=3, lw=0.6, color="k", label="mean +- std of reads")  # fmt: skip
    ax.plot(x, np.array(result["up"], dtype=float), lw=0.8, color="tab:blue", label="up sweeps")
    ax.plot(x, np.array(result["down"], dtype=float), lw=0.8, color="tab:orange", label="down sweeps")
    u = result["usable"]
    if u is not None:
        ax.axvspan(u["dac_lo"], u["dac_hi"], color="tab:green", alpha=0.12, label="usable range")
        fx = np.array([u["dac_lo"], u["dac_hi"]], dtype=float)
        ax.plot(fx, result["gain"] * fx + result["offset"], "--", color="tab:green",
                label=f"fit: gain {result['gain']:.3g}, offset {result['offset']:.0f}")  # fmt: skip
    ax.set_xlabel(f"DAC code ({result['dac_bits']} bits)")
    ax.set_ylabel(f"ADC code ({result['adc_bits']} bits)")
    ax.set_title(f"{result['device']}: DAC -> ADC ramp, noise {result['noise_codes']:.2f} codes RMS")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save(result: dict[str, Any], folder: str | Path | None = None) -> tuple[Path, Path]:
    """Write <device>.json and <device>.png into the calibration folder; returns both paths."""
    out = calibration_dir(folder)
    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(result["device"])
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(json_path)  # an interrupted save never leaves half a file where the last one was
    plot(result, png_path)
    return json_path, png_path


def calibrate(url: str, settings: Settings = Settings(),
              on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Connect to `url`, run the ramp, analyse it. Returns the result (not yet saved).

    Raises:
        ValueError: a bad URL or setting, or a board that cannot do the ramp. ConnectionError: no answer.
    """
    from ..devices import connect

    measure_url = measurement_url(url, settings)
    device = connect(measure_url)
    # a person at the bench wants to hear soon that the board went: wait `reconnect`, not a training run's patience
    device.aio.patience = device.aio.url["reconnect"]
    try:
        hello, caps = device.capabilities, device.capabilities["caps"]
        rate = device.aio.url["rate"]
        hold, reads = hold_ticks(rate, settings)
        levels = ramp(caps["dac_bits"], settings.levels)
        order, up = sweep_order(levels, settings.sweeps)
        done = [0]

        def progress(n: int, total: int) -> None:
            done[0] = n
            if on_progress is not None:
                on_progress(n, total)

        try:
            readings = measure(device, levels[order], reads, progress)
        except ConnectionError as e:
            raise BoardLost(f"{device.id.split('?')[0]} stopped answering after {done[0]} of {len(order)} holds "
                            f"({e}); nothing was saved: check its cable or power and run pnn calibrate again") from e
    finally:
        device.close()
    result = analyse(levels, order, up, readings, caps["dac_bits"], caps["adc_bits"])
    meta = {"device": str(hello.get("device", "")), "board": hello.get("board"), "fw": hello.get("fw"),
            "proto": hello.get("proto"), "url": device.id.split("?")[0], "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rate": rate, "hold_ticks": hold, "reads": reads, "sweeps": settings.sweeps}  # fmt: skip
    if result["usable"] is not None:
        meta["url_params"] = "&".join(f"{k}={result['usable'][k]}" for k in CALIBRATION_KEYS)
    return {**meta, **result}
