"""Hardware abstraction: one small class per board kind behind the same duck-typed interface.

`make_hal(board)` takes the parsed firmware/boards/<name>.json and returns the HAL that its "hal" key
names: "esp32" (internal DAC + ADC1), "rp2040" (PWM or MCP4725 DAC + ADC0) or "sim" (the electronic
layer computed sample by sample on MicroPython's unix port). Each port's module imports `machine`
only when chosen, so the sim never touches hardware modules and a board never loads the sim maths.
"""

HAL_KINDS = ("esp32", "rp2040", "sim")


class HAL:
    """The interface the layer runner and the device loop use; subclasses fill it in.

    Attributes:
        board: "esp32" | "rp2040" | "sim".
        dac_bits, adc_bits: converter resolutions; codes are 0 .. 2**bits - 1.
        min_rate, max_rate: sample-clock range (samples/s) the runner can pace on this board.
        rest_code: DAC code held between examples.
        paced: whether the runner paces ticks with ticks_us (real boards always; the sim on request).
    """

    board = ""
    dac_bits = 0
    adc_bits = 0
    min_rate = 0
    max_rate = 0
    rest_code = 0
    paced = True

    def __init__(self, board: dict) -> None:
        """Read and check the board-file fields every HAL shares (ValueError says which is wrong)."""
        self.dac_bits = _int_field(board, "dac_bits", 1, 16)
        self.adc_bits = _int_field(board, "adc_bits", 1, 16)
        self.min_rate = _int_field(board, "min_rate", 1, 1_000_000)
        self.max_rate = _int_field(board, "max_rate", self.min_rate, 1_000_000)
        self.rest_code = _int_field(board, "rest_code", 0, (1 << self.dac_bits) - 1)
        self.rate = 0

    def check_rate(self, rate: int) -> None:
        """Raise ValueError unless min_rate <= rate <= max_rate."""
        if not self.min_rate <= rate <= self.max_rate:
            raise ValueError(
                "rate %d S/s is outside this board's %d..%d" % (rate, self.min_rate, self.max_rate)
            )

    def set_rate(self, rate: int) -> None:
        """Prepare for a sample clock of `rate` samples/s (the sim re-discretises its circuit)."""
        self.check_rate(rate)
        self.rate = rate

    def dac_write(self, code: int) -> None:
        """Set the DAC to `code` (0 .. 2**dac_bits - 1)."""
        raise NotImplementedError

    def adc_read(self) -> int:
        """Return one ADC conversion as a code 0 .. 2**adc_bits - 1."""
        raise NotImplementedError

    def info(self) -> dict:
        """Extra HELLO capability fields: pins and converters, small enough for every frame."""
        return {}


def make_hal(board: dict) -> HAL:
    """Build the HAL named by board["hal"].

    Args:
        board: the parsed board file (firmware/boards/<name>.json).

    Returns:
        A ready HAL with its DAC at rest_code.

    Raises:
        ValueError: unknown "hal" or a bad board field (the message names it).
    """
    kind = board.get("hal")
    if kind == "sim":
        from pnn_fw.hal.sim import SimHAL

        return SimHAL(board)
    if kind == "esp32":
        from pnn_fw.hal.esp32 import Esp32HAL

        return Esp32HAL(board)
    if kind == "rp2040":
        from pnn_fw.hal.rp2040 import Rp2040HAL

        return Rp2040HAL(board)
    raise ValueError("board 'hal' is %r; expected one of %s" % (kind, ", ".join(HAL_KINDS)))


def _int_field(board: dict, key: str, lo: int, hi: int) -> int:
    """Return board[key] as an int in [lo, hi], or raise ValueError naming the key."""
    if key not in board:
        raise ValueError("board file lacks %r" % key)
    v = board[key]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("board %r is %r; expected an integer in %d..%d" % (key, v, lo, hi))
    return v


def pin_field(board: dict, name: str, default: int) -> int:
    """Return board["pins"][name] (a GPIO number), or `default` when the board file leaves it out."""
    pins = board.get("pins") or {}
    v = pins.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError("board pins[%r] is %r; expected a GPIO number" % (name, v))
    return v
