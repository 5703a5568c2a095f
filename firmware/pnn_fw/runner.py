"""The layer runner: play drive codes on the DAC at a fixed sample clock, sampling the ADC in lockstep.

One continuous clock runs through a whole batch. Tick by tick it waits for the deadline (real boards,
or the sim when its board file says "paced"), reads the ADC `oversample` times if the previous tick
played a drive code, then writes this tick's code. So the sample for drive code k is taken at the end
of the period in which k was held (zero-order hold, sampled just before the next code), and each
example is preceded by `settle` ticks at rest_code that are not sampled. Samples are summed into
n_out contiguous bins (bin i covers [i*n_drive//n_out, (i+1)*n_drive//n_out)) and each bin is
written as its rounded mean. After the batch the DAC is left at rest_code.

A HAL with a `pacer` (the RP2040's DMA, pnn_fw.hal.rp2040_dma) runs the examples it accepts in hardware,
with the same binning; the rest, and every other board, go through the tick loop below.

The per-sample loop is a viper function over preallocated buffers: it allocates nothing (the tests
measure this under MicroPython), so the garbage collector can never pause it mid-example.

Drive codes come as little-endian uint16 (width 2) or, for DACs of 8 bits or fewer, uint8 (width 1).
A transport that must keep talking during a long run (MQTT's keepalive) sets `idle` to a function the
loop calls about IDLE_HZ times a second of sample clock; it must return quickly and allocate nothing.
"""

from array import array
from time import ticks_add, ticks_diff, ticks_us

import micropython
from micropython import const

MAX_OVERSAMPLE = const(64)
MAX_SETTLE = const(65535)
_SUM_LIMIT = 1 << 30  # a bin's sum must stay a small int on 32-bit boards (and in viper's machine word)
IDLE_HZ = 8  # calls of `idle` per second of sample clock (MQTT keepalives are >= 1 s)


class LayerRunner:
    """Runs batches of examples through one HAL with buffers allocated once.

    Args:
        hal: a HAL (see pnn_fw.hal).
        max_drive: longest drive (samples per example) accepted.
        max_batch: most examples per run.
        max_out: most output bins per example.
    """

    def __init__(self, hal, max_drive: int, max_batch: int, max_out: int) -> None:
        for name, v in (("max_drive", max_drive), ("max_batch", max_batch), ("max_out", max_out)):
            if not isinstance(v, int) or v < 1:
                raise ValueError("%s is %r; expected an integer >= 1" % (name, v))
        if max_drive * MAX_OVERSAMPLE * (1 << hal.adc_bits) > _SUM_LIMIT:
            raise ValueError("max_drive %d too long for bin sums at %d ADC bits" % (max_drive, hal.adc_bits))
        self.hal = hal
        self.max_drive = max_drive
        self.max_batch = max_batch
        self.max_out = max_out
        self._out = bytearray(2 * max_batch * max_out)
        self._out_mv = memoryview(self._out)
        # [elapsed_us between first and last tick, overruns, worst lateness in us]
        self._stats = array("i", (0, 0, 0))
        self.max_late_us = 0
        self.idle = None  # called now and then during a run (see the module docstring)

    def run(
        self, drive, batch: int, n_drive: int, rate: int, oversample: int, settle: int, n_out: int, width=2
    ) -> tuple:
        """Play `batch` examples and return their binned responses.

        Args:
            drive: bytes-like, DAC codes (little-endian uint16, or uint8 when width is 1), batch * n_drive
                of them, example-major.
            batch: number of examples (1..max_batch).
            n_drive: codes per example (n_out..max_drive).
            rate: sample clock in samples/s (the HAL's min_rate..max_rate).
            oversample: ADC reads averaged per tick (1..MAX_OVERSAMPLE).
            settle: ticks at rest_code before each example, not sampled (0..MAX_SETTLE).
            n_out: output bins per example (1..n_drive, at most max_out).
            width: bytes per drive code, 2 or 1 (1 only for a DAC of at most 8 bits).

        Returns:
            (response, period_us, overruns): response is a memoryview of little-endian uint16 codes,
            batch * n_out of them, into a buffer the next run overwrites; period_us is the measured
            mean tick period; overruns counts ticks that began after their deadline (0 when unpaced).

        Raises:
            ValueError: an argument out of range or a DAC code above the DAC's range; nothing is played.
        """
        hal = self.hal
        _check("batch", batch, 1, self.max_batch)
        _check("n_drive", n_drive, 1, self.max_drive)
        _check("n_out", n_out, 1, min(n_drive, self.max_out))
        _check("rate", rate, hal.min_rate, hal.max_rate)
        _check("oversample", oversample, 1, MAX_OVERSAMPLE)
        _check("settle", settle, 0, MAX_SETTLE)
        _check("width", width, 1 if hal.dac_bits <= 8 else 2, 2)
        n_codes = batch * n_drive
        if len(drive) != width * n_codes:
            raise ValueError("drive holds %d bytes; batch*n_drive*%d = %d" % (len(drive), width, width * n_codes))
        top = _max_code(drive, n_codes, width)
        dac_max = (1 << hal.dac_bits) - 1
        if top > dac_max:
            raise ValueError("drive code %d exceeds the %d-bit DAC's %d" % (top, hal.dac_bits, dac_max))
        if getattr(hal, "rate", 0) != rate:
            hal.set_rate(rate)
        idle = self.idle
        pacer = getattr(hal, "pacer", None)
        if pacer is not None and pacer.accepts(rate, oversample, settle + n_drive + 1):
            # hardware-paced (the RP2040's DMA): the clock is exact, the period the programmed one
            self.max_late_us = 0
            over = pacer.play(drive, self._out, batch, n_drive, n_out, settle, width, hal.rest_code, idle)
            return self._out_mv[: 2 * batch * n_out], pacer.period_us, over
        if rate > getattr(hal, "ticks_max_rate", rate):
            raise ValueError("rate %d S/s needs DMA pacing: oversample 1 and a short enough example" % rate)
        stats = self._stats
        total = batch * (settle + n_drive)
        _play(
            drive, self._out, stats, hal.dac_write, hal.adc_read,
            batch, n_drive, n_out, settle, oversample, hal.rest_code,
            1 if getattr(hal, "paced", True) else 0, 1_000_000 // rate, 1_000_000 % rate, rate,
            width, idle, (rate + IDLE_HZ - 1) // IDLE_HZ if idle is not None else 0,
        )  # fmt: skip
        self.max_late_us = stats[2]
        # total + 1 ticks: the last one only reads the final sample and returns the DAC to rest.
        period_us = (stats[0] + total // 2) // total
        return self._out_mv[: 2 * batch * n_out], period_us, stats[1]


def _check(name: str, v, lo: int, hi: int) -> None:
    """Raise ValueError unless v is an int in [lo, hi]."""
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("%s is %r; expected an integer in %d..%d" % (name, v, lo, hi))


@micropython.viper
def _max_code(drive, n: int, width: int) -> int:
    """Largest of the first n codes: little-endian uint16 (width 2, bytes read singly: any alignment)
    or uint8 (width 1)."""
    src = ptr8(drive)  # noqa: F821  (viper built-in)
    top = 0
    i = 0
    while i < n:
        c = src[i] if width == 1 else src[2 * i] | (src[2 * i + 1] << 8)
        if c > top:
            top = c
        i += 1
    return top


@micropython.viper
def _play(
    drive, out, stats, dac_write, adc_read,
    batch: int, n_drive: int, n_out: int, settle: int, oversample: int, rest: int,
    paced: int, q: int, r: int, rate: int, width: int, idle, idle_every: int,
):  # fmt: skip
    """The tick loop. Deadlines advance by q us plus r/rate us (Bresenham: no drift, no big ints).
    idle() is called every idle_every ticks, right after a DAC write (0: never)."""
    # ptr8/16/32 are viper built-ins: raw loads and stores into the buffers, no objects made.
    src = ptr8(drive)  # noqa: F821
    dst = ptr16(out)  # noqa: F821  (little-endian on every supported port)
    st = ptr32(stats)  # noqa: F821
    per = settle + n_drive
    total = batch * per
    overruns = 0
    late_max = 0
    frac = 0
    # Tick stamps stay objects (small ints): the ticks_* functions own their wrap-around arithmetic.
    deadline = ticks_add(ticks_us(), q)  # one period of headroom before the first tick
    # Paced runs are timed from tick 0's deadline, so a late start cannot make the mean look short.
    t_first = deadline
    t_last = deadline
    # write cursor: tick within example, byte offset of the example's codes
    wj = 0
    woff = 0
    # read cursor: sample within example, bin, bin edges, running sum, output index of bin 0
    pending = 0
    ridx = 0
    rbin = 0
    rstart = 0
    redge = n_drive // n_out
    acc = 0
    obase = 0
    idle_left = idle_every
    t = 0
    while t <= total:
        if paced:
            d = int(ticks_diff(deadline, ticks_us()))
            if d < 0:
                overruns += 1
                if -d > late_max:
                    late_max = -d
            else:
                while int(ticks_diff(deadline, ticks_us())) > 0:
                    pass
            deadline = ticks_add(deadline, q)
            frac += r
            if frac >= rate:
                frac -= rate
                deadline = ticks_add(deadline, 1)
        if t == 0 and paced == 0:
            t_first = ticks_us()
        if pending:
            k = 0
            while k < oversample:
                acc += int(adc_read())
                k += 1
            ridx += 1
            if ridx == redge:
                n = (redge - rstart) * oversample
                dst[obase + rbin] = (acc + (n >> 1)) // n
                acc = 0
                rbin += 1
                rstart = redge
                redge = ((rbin + 1) * n_drive) // n_out
                if rbin == n_out:
                    obase += n_out
                    rbin = 0
                    rstart = 0
                    ridx = 0
                    redge = n_drive // n_out
        if t == total:
            t_last = ticks_us()
            dac_write(rest)
            break
        if wj < settle:
            dac_write(rest)
            pending = 0
        elif width == 1:
            dac_write(src[woff + wj - settle])
            pending = 1
        else:
            i = woff + 2 * (wj - settle)
            dac_write(src[i] | (src[i + 1] << 8))
            pending = 1
        if idle_every:
            idle_left -= 1
            if idle_left == 0:
                idle_left = idle_every
                idle()
        wj += 1
        if wj == per:
            wj = 0
            woff += width * n_drive
        t += 1
    st[0] = int(ticks_diff(t_last, t_first))
    st[1] = overruns
    st[2] = late_max
