"""The device boundary: what a board can do (HELLO caps), and floats <-> its integer codes.

The host speaks normalised floats, the firmware integer codes only. A drive of 0.0 / 1.0 becomes the
DAC codes `dac_lo` / `dac_hi` (default: the converter's full range), and ADC codes `adc_lo` / `adc_hi`
become responses 0.0 / 1.0: a two-point calibration, given as URL parameters when a board's
converters are not rail to rail (e.g. an ESP32 ADC kept within 0.15-2.45 V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pnn_protocol import messages

from .errors import CapabilityError, ProtocolVersionError
from .url import DeviceURL

_CAPS = ("dac_bits", "adc_bits", "max_drive", "max_batch", "max_out", "max_codes", "min_rate", "max_rate",
         "max_oversample", "max_settle", "max_frame")


@dataclass(frozen=True)
class Capabilities:
    """A board's HELLO: who it is and its limits (protocol/SPEC.md, "HELLO capabilities")."""

    device: str
    fw: str
    proto: int
    board: str
    dac_bits: int
    adc_bits: int
    max_drive: int
    max_batch: int
    max_out: int
    max_codes: int
    min_rate: int
    max_rate: int
    max_oversample: int
    max_settle: int
    max_frame: int
    cache: int = 0  # RESULTs the board's cache keeps at most (caps "cache"); 0: it states none
    cache_bytes: int = 0  # the byte pool they are packed into (caps "cache_bytes"); 0: not stated
    boot: int | None = None  # this boot's id (HELLO "boot"); None from firmware that predates it
    drive_widths: tuple[int, ...] = (2,)  # bytes per drive code the board takes (caps "drive_widths")

    @property
    def drive_width(self) -> int:
        """Bytes per drive code to send: 1 (uint8) where the board offers it and its DAC fits, else 2."""
        return 1 if 1 in self.drive_widths and self.dac_bits <= 8 else 2

    @classmethod
    def from_hello(cls, hello: dict[str, Any]) -> Capabilities:
        caps = hello.get("caps")
        if not isinstance(caps, dict):
            raise CapabilityError("HELLO carries no 'caps' map")
        missing = [k for k in _CAPS if not isinstance(caps.get(k), int)]
        if missing:
            raise CapabilityError(f"HELLO caps lack integer field(s) {', '.join(missing)}; is the firmware protocol v1?")
        if hello.get("proto") != messages.VERSION:
            raise ProtocolVersionError(f"device speaks protocol {hello.get('proto')!r}, this host speaks {messages.VERSION}")
        widths = caps.get("drive_widths")
        widths = tuple(w for w in widths if w in messages.DRIVE_WIDTHS) if isinstance(widths, list) else ()
        return cls(str(hello.get("device", "")), str(hello.get("fw", "")), int(hello["proto"]),
                   str(hello.get("board", "")), *(int(caps[k]) for k in _CAPS), cache=_count(caps, "cache"),
                   cache_bytes=_count(caps, "cache_bytes"), boot=boot_id(hello), drive_widths=widths or (2,))

    def check(self, url: DeviceURL) -> None:
        """Raise CapabilityError (saying what to change) if the board cannot serve `url`'s settings."""
        p = url.params
        problems = []
        if p["n_in"] > self.max_drive:
            problems.append(f"n_in={p['n_in']} > max_drive={self.max_drive}")
        if p["n_out"] > self.max_out:
            problems.append(f"n_out={p['n_out']} > max_out={self.max_out}")
        if not self.min_rate <= p["rate"] <= self.max_rate:
            problems.append(f"rate={p['rate']} outside {self.min_rate}..{self.max_rate}")
        if p["oversample"] > self.max_oversample:
            problems.append(f"oversample={p['oversample']} > max_oversample={self.max_oversample}")
        if p["settle"] > self.max_settle:
            problems.append(f"settle={p['settle']} > max_settle={self.max_settle}")
        if self.chunk_limit(p["n_in"], p["n_out"]) < 1:
            problems.append(f"one example of n_in={p['n_in']} does not fit a frame of {self.max_frame} bytes")
        for name, bits in (("dac", self.dac_bits), ("adc", self.adc_bits)):
            hi = p.get(f"{name}_hi") or 2**bits - 1
            if hi >= 2**bits:
                problems.append(f"{name}_hi={hi} is beyond the {bits}-bit {name.upper()}")
        if problems:
            raise CapabilityError(f"{url.id} ({self.board} board {self.device!r}) cannot do this: {'; '.join(problems)}")

    def results_kept(self, chunk: int, n_out: int) -> int | None:
        """How many RESULTs of up to `chunk` examples of `n_out` codes the board's cache keeps whatever came
        before it (SPEC section 4: min(cache, cache_bytes // s - 1), s = the largest such RESULT's payload + 4,
        and never fewer than the latest one); None where its HELLO states no cache."""
        if self.cache <= 0:
            return None
        if self.cache_bytes <= 0:
            return self.cache
        s = 2 * chunk * n_out + messages.RUN_OVERHEAD + 4
        return max(1, min(self.cache, self.cache_bytes // s - 1))

    def window_for(self, window: int, chunk: int, n_out: int) -> tuple[int, str]:
        """The requests in flight a host may keep (`window`, or fewer), and why it is fewer ("" if not): a
        re-sent RUN must find its RESULT in the cache, so no more RUNs may be in flight than it keeps."""
        kept = self.results_kept(chunk, n_out)
        if kept is None or window <= kept:
            return window, ""
        pool = f", cache_bytes={self.cache_bytes}" if self.cache_bytes else ""
        return kept, (f"window={window} lowered to {kept}: the board's RESULT cache (cache={self.cache}{pool}) keeps "
                      f"{kept} RESULTs of {chunk} x {n_out} codes, and a re-sent RUN must find its RESULT there "
                      f"(allowed: window <= {kept}, or a smaller chunk)")  # fmt: skip

    def chunk_limit(self, n_drive: int, n_out: int) -> int:
        """Most examples one RUN may carry: max_batch, and the frame limit in both directions (max_codes
        counts uint16 codes: a uint8 drive fits twice as many)."""
        drive_room = 2 * self.max_codes // (self.drive_width * max(n_drive, 1))
        return min(self.max_batch, drive_room, self.max_codes // max(n_out, 1))


def _count(caps: dict[str, Any], key: str) -> int:
    """A non-negative integer cap, 0 where absent or of another type (v1: unknown or odd keys are ignored)."""
    value = caps.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def boot_id(msg: dict[str, Any]) -> int | None:
    """The boot id a HELLO or PONG carries (SPEC section 3), or None when it has none (older firmware).

    A change between two answers means the board rebooted, losing its CONFIG settings and RESULT cache.
    """
    boot = msg.get("boot")
    return boot if isinstance(boot, int) and not isinstance(boot, bool) and 0 <= boot <= messages.MAX_ID else None


class Calibration:
    """Two-point maps between floats and codes.

    Args:
        dac_bits, adc_bits: converter depths (from HELLO).
        dac_lo, dac_hi: DAC codes for drive 0.0 and 1.0 (None: 0 and the top code).
        adc_lo, adc_hi: ADC codes that read as response 0.0 and 1.0 (None: 0 and the top code).
        drive_width: bytes per drive code on the wire, 2 (uint16) or 1 (uint8: only for a DAC of <= 8 bits
            on a board that offers it, see Capabilities.drive_width).
    """

    def __init__(self, dac_bits: int, adc_bits: int, dac_lo: int | None = None, dac_hi: int | None = None,
                 adc_lo: int | None = None, adc_hi: int | None = None, drive_width: int = 2) -> None:
        if drive_width not in messages.DRIVE_WIDTHS or (drive_width == 1 and dac_bits > 8):
            raise CapabilityError(f"drive_width={drive_width} cannot carry {dac_bits}-bit DAC codes")
        self.drive_width = drive_width
        self._dtype = "u1" if drive_width == 1 else "<u2"
        self.dac_top, self.adc_top = 2**dac_bits - 1, 2**adc_bits - 1
        self.dac_lo = 0 if dac_lo is None else dac_lo
        self.dac_hi = self.dac_top if dac_hi is None else dac_hi
        self.adc_lo = 0 if adc_lo is None else adc_lo
        self.adc_hi = self.adc_top if adc_hi is None else adc_hi
        if self.dac_hi == self.dac_lo or self.adc_hi == self.adc_lo:
            raise CapabilityError("calibration needs distinct lo and hi codes")
        self._dac_span, self._adc_span = self.dac_hi - self.dac_lo, np.float32(self.adc_hi - self.adc_lo)
        # both DAC ends are codes the DAC has: a drive in [0, 1] rounds to one too (no clip to do)
        self._inside = 0 <= min(self.dac_lo, self.dac_hi) and max(self.dac_lo, self.dac_hi) <= self.dac_top

    @classmethod
    def for_device(cls, caps: Capabilities, url: DeviceURL) -> Calibration:
        p = url.params
        return cls(caps.dac_bits, caps.adc_bits, p.get("dac_lo"), p.get("dac_hi"), p.get("adc_lo"), p.get("adc_hi"),
                   caps.drive_width)

    def encode(self, drive: np.ndarray, *, clipped: bool = False) -> np.ndarray:
        """float drive [B, n] (clipped to [0, 1]; `clipped`: it is already) -> DAC codes, rounded to the
        nearest code, in the wire's dtype: uint16 little-endian, or uint8 when drive_width is 1 (its
        .tobytes() is RUN's drive)."""
        # (ufuncs in place: np.clip's Python wrapper costs more than the arithmetic on a 256-sample drive;
        # each ufunc call costs about 1 us here, so none is made that cannot change a code: + 0, clip inside)
        codes = drive * self._dac_span if clipped else np.minimum(np.maximum(drive, 0.0), 1.0)
        if not clipped:
            codes *= self._dac_span
        if self.dac_lo:
            codes += self.dac_lo
        np.rint(codes, out=codes)
        if not self._inside:
            np.minimum(np.maximum(codes, 0, out=codes), self.dac_top, out=codes)
        return codes.astype(self._dtype)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """uint16 ADC codes -> float32 responses (full-scale fractions after calibration)."""
        out = codes.astype(np.float32)
        if self.adc_lo:  # (x - 0 is x: no call for it)
            out -= self.adc_lo
        out /= self._adc_span
        return out
