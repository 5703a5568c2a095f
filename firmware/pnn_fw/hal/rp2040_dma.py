"""Hardware-paced examples on the RP2040: the ADC free-running from its clock divider, the PWM drive fed by DMA.

Per example, two rp2.DMA channels run on their own while the CPU waits:
- channel A drains the ADC FIFO (threshold 1, DREQ_ADC = 36) into `samples`, one 16-bit result per
  conversion; the ADC converts on its own divider (CS.START_MANY, DIV = 48 MHz / rate);
- channel B copies the example's PWM compare values from `cc` to the slice's CC register, one per tick of
  the DMA pacing timer TIMER0 (X/Y * clk_sys, TREQ 0x3b). A 16-bit write to a peripheral is replicated to
  both halves of the 32-bit register: the pin's channel gets it (its neighbour's is unused).
The ADC is started, then B, a few instructions apart: conversion j starts at j ticks, code i is written
just after tick i + 1, so the sample that closes code i's hold is conversion i + 2 (LAG), taken just
before code i + 1 is written: the ticks_us path's zero-order hold, on a jitter-free clock. The PWM
compare register is double-buffered: a code takes effect at the next PWM wrap (<= 2.05 us at 488 kHz),
so at 500 kS/s (a 2 us tick) the PWM, not the clock, limits what reaches the filter.

Every buffer and register address is set up once (once per rate, the clock plan); the per-example work is viper over raw pointers: a run
allocates nothing. Between examples the DAC stays at rest while the CPU bins the samples (the next
example's settle ticks still run on the clock). The DMA timer is TIMER0 (MicroPython 1.26 has no
rp2.DMATimer to claim it with): nothing else in this firmware uses it.
"""

from array import array

import micropython
import rp2
import uctypes
from machine import freq

from pnn_fw.hal import _pace

DREQ_ADC = 36
TREQ_TIMER0 = 0x3B
LAG = 2  # conversions between the write of code i and the one that samples its hold (see above)
_DMA = 0x50000000
_ADC = 0x4004C000
_PWM = 0x40050000
# register-table slots (regs): addresses, then values
_CS, _FCS, _FIFO, _DIV, _CHA, _CHB, _CCREG, _TIMER, _SAMPLES, _CCBUF = range(10)
_CTRLA, _CTRLB, _CSRUN, _CSIDLE, _DIVV, _TIMERV = range(10, 16)


class DmaPacer:
    """Claims two DMA channels and the buffers for examples of up to `capacity` ticks (settle + drive + 1).

    Args:
        pwm_pin: the drive's GPIO (its PWM slice and channel are already set up by machine.PWM).
        adc_channel: 0..3 (GP26..GP29).
        cc_table: array("H") of 2**dac_bits PWM compare values, code -> CC (what duty_u16 programs).
        capacity: most ticks in one example, settle and the closing rest write included.
    """

    def __init__(self, pwm_pin: int, adc_channel: int, cc_table, capacity: int) -> None:
        self.capacity = capacity
        self.cc_table = cc_table
        self.cc = array("H", bytes(2 * capacity))
        self.samples = array("H", bytes(2 * (capacity + LAG)))
        self._a = rp2.DMA()
        self._b = rp2.DMA()
        slice_base = _PWM + ((pwm_pin >> 1) & 7) * 0x14
        cs_idle = 1 | (adc_channel << 12)  # EN, AINSEL
        regs = array("I", bytes(4 * 16))
        regs[_CS], regs[_FCS], regs[_FIFO], regs[_DIV] = _ADC, _ADC + 8, _ADC + 12, _ADC + 16
        # DMA.channel (the channel number) is documented, but missing from the rp2 stubs
        regs[_CHA] = _DMA + 0x40 * self._a.channel  # pyright: ignore[reportAttributeAccessIssue]
        regs[_CHB] = _DMA + 0x40 * self._b.channel  # pyright: ignore[reportAttributeAccessIssue]
        regs[_CCREG] = slice_base + 0x0C
        regs[_TIMER] = _DMA + 0x420
        regs[_SAMPLES] = uctypes.addressof(self.samples)
        regs[_CCBUF] = uctypes.addressof(self.cc)
        regs[_CTRLA] = self._a.pack_ctrl(
            size=1, inc_read=False, inc_write=True, treq_sel=DREQ_ADC, high_pri=True
        )
        regs[_CTRLB] = self._b.pack_ctrl(size=1, inc_read=True, inc_write=False, treq_sel=TREQ_TIMER0)
        regs[_CSRUN] = cs_idle | 8  # START_MANY
        regs[_CSIDLE] = cs_idle
        self.regs = regs
        self.rate = 0
        self.period_us = 0
        self._sys = freq()
        self._key = -1  # the last (rate, ticks) asked about, and its plan
        self._plan = None

    def accepts(self, rate: int, oversample: int, ticks: int) -> bool:
        """Whether this pacer can run examples of `ticks` ticks at `rate` (and sets its clocks for it)."""
        if oversample != 1 or ticks > self.capacity:
            return False
        key = rate * 65536 + ticks
        if key != self._key:
            self._key, self._plan = key, _pace.plan(rate, self._sys, ticks)
        p = self._plan
        if p is None:
            return False
        if rate != self.rate:
            self.regs[_TIMERV], self.regs[_DIVV], self.period_us = p
            self.rate = rate
        return True

    def play(
        self, drive, out, batch: int, n_drive: int, n_out: int, settle: int, width: int, rest: int, idle
    ) -> int:
        """Run `batch` examples (see LayerRunner.run for the arguments); returns the ADC FIFO overflows."""
        over = 0
        for b in range(batch):
            _fill(self.cc, self.cc_table, drive, b * n_drive, n_drive, settle, width, rest)
            over += _example(self.regs, settle + n_drive + 1)
            _bin(self.samples, LAG + settle, n_drive, n_out, out, b * n_out)
            if idle is not None:
                idle()
        return over


@micropython.viper
def _fill(cc, table, drive, first: int, n_drive: int, settle: int, width: int, rest: int):
    """cc = [rest] * settle + the example's codes (uint8 or little-endian uint16) + [rest], as CC values."""
    dst = ptr16(cc)  # noqa: F821  (viper built-ins)
    tab = ptr16(table)  # noqa: F821
    src = ptr8(drive)  # noqa: F821
    r = tab[rest]
    i = 0
    while i < settle:
        dst[i] = r
        i += 1
    k = 0
    while k < n_drive:
        j = first + k
        c = src[j] if width == 1 else src[2 * j] | (src[2 * j + 1] << 8)
        dst[settle + k] = tab[c]
        k += 1
    dst[settle + n_drive] = r


@micropython.viper
def _example(regs, n: int) -> int:
    """One example of n ticks: program A (n + LAG - 1 conversions) and B (n writes), start, wait, stop.
    Returns 1 when the ADC FIFO overflowed (a sample was lost), else 0."""
    rg = ptr32(regs)  # noqa: F821
    cs = ptr32(rg[0])  # noqa: F821
    fcs = ptr32(rg[1])  # noqa: F821
    fifo = ptr32(rg[2])  # noqa: F821
    div = ptr32(rg[3])  # noqa: F821
    a = ptr32(rg[4])  # noqa: F821
    b = ptr32(rg[5])  # noqa: F821
    timer = ptr32(rg[7])  # noqa: F821
    cs[0] = rg[13]  # ADC on, no START_MANY: let a conversion in flight finish
    while (cs[0] & 0x100) == 0:  # READY
        pass
    fcs[0] = 1 | (1 << 24) | 0xC00  # FIFO on, threshold 1, OVER/UNDER cleared; no DREQ while it drains
    x = 0
    while (fcs[0] >> 16) & 0xF:
        x += fifo[0]
    div[0] = rg[14]
    timer[0] = rg[15]
    a[0] = rg[2]  # READ_ADDR: the FIFO
    a[1] = rg[8]  # WRITE_ADDR: samples
    a[2] = n + 1  # TRANS_COUNT: the conversions up to the one that samples the last drive code
    a[4] = rg[10]  # AL1_CTRL (no trigger yet)
    b[0] = rg[9]  # cc values
    b[1] = rg[6]  # the PWM CC register
    b[2] = n
    b[4] = rg[11]
    fcs[0] = 1 | 8 | (1 << 24)  # DREQ on
    a[3] = rg[10]  # CTRL_TRIG: A waits for the first conversion
    cs[0] = rg[12]  # START_MANY: conversion 0 now, then one per DIV
    b[3] = rg[11]  # B's first write one timer period from now
    while (a[3] | b[3]) & (1 << 24):  # BUSY
        pass
    over = (fcs[0] >> 11) & 1
    cs[0] = rg[13]
    while (cs[0] & 0x100) == 0:
        pass
    while (fcs[0] >> 16) & 0xF:
        x += fifo[0]
    fcs[0] = 0xC00  # FIFO off: machine.ADC.read_u16 (single conversions) works again
    div[0] = 0
    return over


@micropython.viper
def _bin(samples, first: int, n_drive: int, n_out: int, out, obase: int):
    """out[obase + i] = rounded mean of samples[first + edge_i : first + edge_i+1] (the runner's bins)."""
    s = ptr16(samples)  # noqa: F821
    dst = ptr16(out)  # noqa: F821
    i = 0
    while i < n_out:
        lo = (i * n_drive) // n_out
        hi = ((i + 1) * n_drive) // n_out
        acc = 0
        k = lo
        while k < hi:
            acc += s[first + k]
            k += 1
        n = hi - lo
        dst[obase + i] = (acc + (n >> 1)) // n
        i += 1
