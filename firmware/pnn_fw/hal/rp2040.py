"""RP2040 (Raspberry Pi Pico) HAL: a PWM or MCP4725 DAC for the drive, ADC0 (GP26) for the response.

The RP2040 has no DAC. The board file's "dac" picks one of (HARDWARE_NOTES):
- "pwm": GP15 PWM at ~488 kHz (125 MHz / 256: 8 bits of duty) into a 2-stage RC filter
  (1 kOhm/10 nF, 10 kOhm/1 nF) and an MCP6002 follower. dac_bits 8.
- "mcp4725": an MCP4725 12-bit DAC on I2C0 (GP4 SDA, GP5 SCL, address 0x60 or 0x62), written with the
  2-byte fast-write command at 400 kHz: about 7 kS/s at most. dac_bits 12.
The collector reaches GP26 (ADC0) through 1 kOhm; read_u16() >> 4 gives the converter's 12 bits.
On a plain Pico, GP23 high puts the SMPS in PWM mode, which lowers ADC noise; on a Pico W GP23 is the
radio's power line, so its board file must set pins.smps to null.

Pacing: with the PWM DAC (board "pacing": "dma", the default) examples run on the DMA (rp2040_dma.py:
ADC free-running from its divider into its FIFO, drained by one channel, the PWM compare fed by another
on the DMA pacing timer): a jitter-free sample clock up to 500 kS/s, so HELLO says max_rate 500000. A run
the DMA cannot take (oversample > 1, an example longer than its buffers, a rate its clocks cannot both
hit: below ~1.9 kS/s) is paced by the runner with ticks_us, up to the board file's max_rate (what that
loop reaches). "pacing": "ticks_us", the MCP4725 (an I2C write per code) and a port without rp2.DMA use
ticks_us only.
"""

from array import array

from machine import ADC, I2C, PWM, Pin

from pnn_fw.hal import HAL, pin_field

DMA_SETTLE = 512  # settle ticks an example may have and still run on the DMA (board "dma_settle")
PWM_FREQ = 488_000  # 125 MHz / 256: the fastest PWM that still has 8 bits of duty resolution
MCP4725_ADDRS = (0x60, 0x61, 0x62, 0x63)


class Rp2040HAL(HAL):
    """Pico with a PWM+RC or MCP4725 DAC and ADC0."""

    board = "rp2040"

    def __init__(self, board: dict) -> None:
        HAL.__init__(self, board)
        self.dac_kind = board.get("dac", "pwm")
        if self.adc_bits != 12:
            raise ValueError("rp2040 board needs adc_bits 12 (its ADC is 12-bit)")
        self.adc_pin = pin_field(board, "adc", 26)
        if not 26 <= self.adc_pin <= 28:
            raise ValueError("rp2040 ADC pin %d: the ADC inputs are GP26..GP28" % self.adc_pin)
        pins = board.get("pins") or {}
        smps = pins.get("smps", 23)
        if smps is not None:
            Pin(pin_field(board, "smps", 23), Pin.OUT, value=1)
        self._adc = ADC(Pin(self.adc_pin))
        if self.dac_kind == "pwm":
            self._init_pwm(board)
        elif self.dac_kind == "mcp4725":
            self._init_mcp4725(board)
        else:
            raise ValueError("rp2040 board 'dac' is %r; expected 'pwm' or 'mcp4725'" % (self.dac_kind,))
        self.ticks_max_rate = self.max_rate  # what the ticks_us loop reaches (the board file's max_rate)
        self.pacer = None
        pacing = board.get("pacing", "dma")
        if pacing not in ("dma", "ticks_us"):
            raise ValueError("rp2040 board 'pacing' is %r; expected 'dma' or 'ticks_us'" % (pacing,))
        if self.dac_kind == "pwm" and pacing == "dma":
            self._init_dma(board)
        self.dac_write(self.rest_code)

    def _init_dma(self, board: dict) -> None:
        """The DMA pacer, with the PWM compare value duty_u16 programs for each code; absent without rp2."""
        try:
            from machine import mem32

            from pnn_fw.hal import _pace
            from pnn_fw.hal.rp2040_dma import DmaPacer
        except ImportError:  # not an rp2 port (the unix-port tests' stand-in machine): ticks_us only
            return
        cc_reg = 0x40050000 + ((self.dac_pin >> 1) & 7) * 0x14 + 0x0C
        shift = 16 if self.dac_pin & 1 else 0  # channel B is the upper half
        table = array("H", bytes(2 << self.dac_bits))
        for code in range(1 << self.dac_bits):
            self.dac_write(code)
            table[code] = (mem32[cc_reg] >> shift) & 0xFFFF
        settle = board.get("dma_settle", DMA_SETTLE)
        if not isinstance(settle, int) or isinstance(settle, bool) or not 0 <= settle <= 65535:
            raise ValueError("rp2040 board 'dma_settle' is %r; expected an integer in 0..65535" % (settle,))
        self.pacer = DmaPacer(self.dac_pin, self.adc_pin - 26, table, board["max_drive"] + settle + 1)
        self.max_rate = _pace.ADC_CLOCK // _pace.ADC_MIN_CYCLES

    def _init_pwm(self, board: dict) -> None:
        """GP15 (by default) PWM at 488 kHz; codes are spread over the 16-bit duty by bit replication."""
        if self.dac_bits != 8:
            raise ValueError("rp2040 PWM DAC has 8 bits of duty at 488 kHz; set dac_bits 8")
        self.dac_pin = pin_field(board, "pwm", 15)
        self._pwm = PWM(Pin(self.dac_pin), freq=PWM_FREQ, duty_u16=0)
        self._i2c = None

    def _init_mcp4725(self, board: dict) -> None:
        """MCP4725 on I2C0 at 400 kHz; the 2-byte fast-write buffer is allocated once."""
        if self.dac_bits != 12:
            raise ValueError("MCP4725 is a 12-bit DAC; set dac_bits 12")
        self.dac_pin = -1
        self._addr = board.get("i2c_addr", 0x60)
        if self._addr not in MCP4725_ADDRS:
            raise ValueError("MCP4725 address %r; expected 0x60..0x63" % (self._addr,))
        sda = pin_field(board, "sda", 4)
        scl = pin_field(board, "scl", 5)
        self._i2c = I2C(0, sda=Pin(sda), scl=Pin(scl), freq=400_000)
        self._buf = bytearray(2)
        self._pwm = None

    def dac_write(self, code: int) -> None:
        """Set the DAC: PWM duty (code * 257 maps 0..255 onto 0..65535) or an MCP4725 fast write."""
        if self._pwm is not None:
            self._pwm.duty_u16(code * 257)
        elif self._i2c is not None:
            buf = self._buf
            buf[0] = (code >> 8) & 0x0F  # fast mode: C2 C1 = 00, power-down bits 00, D11..D8
            buf[1] = code & 0xFF
            self._i2c.writeto(self._addr, buf)

    def adc_read(self) -> int:
        """One 12-bit conversion of ADC0 (read_u16 scales to 16 bits; shift back)."""
        return self._adc.read_u16() >> 4

    def info(self) -> dict:
        """Pins and converters for HELLO."""
        if self.dac_kind == "pwm":
            dac = "rp2040 PWM 8-bit GP%d %d Hz" % (self.dac_pin, PWM_FREQ)
        else:
            dac = "MCP4725 12-bit I2C0 0x%02x" % self._addr
        pacing = (
            "dma <= %d S/s, ticks_us <= %d S/s" % (self.max_rate, self.ticks_max_rate)
            if self.pacer
            else "ticks_us"
        )
        return {"dac": dac, "adc": "rp2040 ADC 12-bit GP%d" % self.adc_pin, "pacing": pacing}
