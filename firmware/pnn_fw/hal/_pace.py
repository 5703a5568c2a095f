"""Clock arithmetic for hardware pacing on the RP2040 (pure Python: checked on the unix port too).

Two clocks pace a DMA run: the ADC's divider (clk_adc / (1 + INT + FRAC/256), at least 96 cycles: 500 kS/s
at 48 MHz) and a DMA pacing timer ((X/Y) * clk_sys, X and Y 16 bits each). They run apart, so each must hit
the requested rate closely enough that over one example they drift by less than DRIFT of a tick.
"""

ADC_CLOCK = 48_000_000  # clk_adc: the USB PLL's 48 MHz, which MicroPython's USB keeps running
ADC_MIN_CYCLES = 96  # one conversion: the ADC's fastest free-running period
DRIFT_DIV = 50  # the clocks may drift apart by 1/DRIFT_DIV of a tick over one example, no more


def timer_ratio(rate: int, sys_clock: int) -> tuple:
    """(X, Y) with X/Y closest to rate/sys_clock and X, Y <= 0xFFFF (continued fractions), or (0, 0)."""
    if not 0 < rate <= sys_clock:
        return 0, 0
    p0, q0, p1, q1 = 0, 1, 1, 0  # convergents p/q of rate/sys_clock
    n, d = rate, sys_clock
    while d:
        a = n // d
        p2, q2 = a * p1 + p0, a * q1 + q0
        if p2 > 0xFFFF or q2 > 0xFFFF:
            break
        p0, q0, p1, q1 = p1, q1, p2, q2
        n, d = d, n - a * d
    if p1 == 0 or q1 == 0:
        return 0, 0
    return p1, q1


def adc_div256(rate: int) -> int:
    """The ADC divider in 1/256 cycles (1 + INT + FRAC/256, times 256) nearest to rate, 0 if out of reach."""
    d = (ADC_CLOCK * 256 + rate // 2) // rate
    if d < ADC_MIN_CYCLES * 256 or d >= 65537 * 256:
        return 0
    return d


def plan(rate: int, sys_clock: int, ticks: int) -> tuple | None:
    """(timer register value, ADC DIV register value, period in us) for `ticks` ticks at `rate`, or None
    when the two clocks cannot both come close enough (below ~1.9 kS/s at 125 MHz: Y would pass 16 bits)."""
    x, y = timer_ratio(rate, sys_clock)
    d = adc_div256(rate)
    if not x or not d:
        return None
    # In integers (MicroPython's floats are 32-bit on the RP2040): timer period y/(x*S), ADC d/(256*A).
    xs = x * sys_clock
    if abs(y * 256 * ADC_CLOCK - d * xs) * ticks * DRIFT_DIV > d * xs or abs(rate * y - xs) * 1000 > xs:
        return None
    div = (((d >> 8) - 1) << 8) | (d & 0xFF)
    return (x << 16) | y, div, (y * 1_000_000 + xs // 2) // xs
