"""ESP32 HAL: the internal 8-bit DAC on GPIO25/26 and a 12-bit ADC1 channel at 11 dB attenuation.

Wiring (HARDWARE_NOTES): GPIO25 (DAC1) drives R1; the collector reaches GPIO34 (ADC1) through a
10k/15k divider, keeping it inside the ADC's near-linear 0.15..2.45 V window.
Traps handled here: ADC2 pins stop working while Wi-Fi is on, so only ADC1 pins (GPIO32..39) are
accepted; ESP32-S2/S3/C3 differ (S3/C3 have no DAC at all) and need their own board file and HAL.
The ADC is non-linear near the rails; that is calibrated on the host, not corrected here.
"""

from machine import ADC, DAC, Pin

from pnn_fw.hal import HAL, pin_field

DAC_PINS = (25, 26)
ADC1_PINS = (32, 33, 34, 35, 36, 37, 38, 39)


class Esp32HAL(HAL):
    """Classic ESP32 (WROOM/WROVER): DAC.write for the drive, ADC.read for the response."""

    board = "esp32"

    def __init__(self, board: dict) -> None:
        HAL.__init__(self, board)
        if self.dac_bits != 8 or self.adc_bits != 12:
            raise ValueError("esp32 board needs dac_bits 8 and adc_bits 12 (its DAC and ADC1 at 12 bits)")
        self.dac_pin = pin_field(board, "dac", 25)
        self.adc_pin = pin_field(board, "adc", 34)
        if self.dac_pin not in DAC_PINS:
            raise ValueError("esp32 DAC pin %d: the DAC is only on GPIO25 or GPIO26" % self.dac_pin)
        if self.adc_pin not in ADC1_PINS:
            raise ValueError(
                "esp32 ADC pin %d: use an ADC1 pin (GPIO32..39); ADC2 fails with Wi-Fi on" % self.adc_pin
            )
        self._dac = DAC(Pin(self.dac_pin))
        self._dac.write(self.rest_code)
        self._adc = ADC(Pin(self.adc_pin), atten=ADC.ATTN_11DB)
        self._adc.width(ADC.WIDTH_12BIT)  # read() then returns raw 0..4095
        # The runner fetches hal.dac_write / hal.adc_read once per run and calls them per sample:
        # binding the C methods here skips a Python-level call on every tick.
        # (DAC.write's stub names its parameter "value", hence the one suppression.)
        self.dac_write = self._dac.write  # pyright: ignore[reportAttributeAccessIssue]
        self.adc_read = self._adc.read

    def dac_write(self, code: int) -> None:
        """Set the DAC (0..255 -> 0..3.3 V)."""
        self._dac.write(code)

    def adc_read(self) -> int:
        """One raw 12-bit conversion of the ADC pin."""
        return self._adc.read()

    def info(self) -> dict:
        """Pins and converters for HELLO."""
        return {
            "dac": "esp32 DAC 8-bit GPIO%d" % self.dac_pin,
            "adc": "esp32 ADC1 12-bit 11dB GPIO%d" % self.adc_pin,
        }
