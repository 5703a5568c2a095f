"""Draw the four hobbyist schematics (electronic / mechanical layer x ESP32 / RP2040) as SVG.

The SVGs are committed, so nobody needs this script to *view* them; run it only after changing a
circuit:

    pip install schemdraw
    python hardware/tools/draw_schematics.py          # writes hardware/{electronic,mechanical}/*.svg

Component values here must match hardware/electronic/layer.lib and the wiring tables in the
guide; tests/test_hardware_guide.py checks that the SVGs name the pins the firmware uses.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import schemdraw
import schemdraw.elements as elm

HW = Path(__file__).resolve().parents[1]

# Plain SVG text (not paths), so the pin names stay searchable and the files stay small.
schemdraw.use("svg")
schemdraw.config(fontsize=11, font="DejaVu Sans, Arial, sans-serif", unit=2.5, margin=0.8)


@dataclass(frozen=True)
class Board:
    """What a schematic needs to know about a board: its name and the header labels to use."""

    title: str
    drive_pin: str     # DAC (or PWM) pin that drives the layer
    adc_pin: str       # ADC pin that reads the layer (electronic) or the mic (mechanical)
    v33: str           # 3.3 V supply pin
    v5: str            # 5 V (USB) pin
    gnd: str           # ground pin next to the ADC


ESP32_E = Board("ESP32 DevKitC", "GPIO25 (DAC1)", "GPIO34 (ADC1_CH6)", "3V3", "5V", "GND")
ESP32_M = Board("ESP32 DevKitC", "GPIO25 (DAC1)", "GPIO35 (ADC1_CH7)", "3V3", "5V", "GND")
PICO_E = Board("Raspberry Pi Pico", "GP15 (PWM7B, pin 20)", "GP26 (ADC0, pin 31)", "3V3(OUT) pin 36",
               "VBUS pin 40", "AGND pin 33")
PICO_M = Board("Raspberry Pi Pico", "GP15 (PWM7B, pin 20)", "GP27 (ADC1, pin 32)", "3V3(OUT) pin 36",
               "VBUS pin 40", "AGND pin 33")


def _mcu(d: schemdraw.Drawing, b: Board, with_5v: bool) -> elm.Ic:
    """The board as a box: ADC pin on top, 3V3 (5V) and the drive pin on the right, GND at the bottom.

    The ADC pin sits on top so the wire back from the output node runs above the circuit and
    crosses nothing.
    """
    right = [("v33", b.v33), ("v5", b.v5), ("drive", b.drive_pin)] if with_5v else \
        [("v33", b.v33), ("drive", b.drive_pin)]
    n = len(right)
    # schemdraw numbers right-side slots from the bottom up
    pins = [elm.IcPin(name=text, side="right", slot=f"{n - i}/{n}", anchorname=anchor)
            for i, (anchor, text) in enumerate(right)]
    pins += [elm.IcPin(name=b.adc_pin, side="top", anchorname="adc"),
             elm.IcPin(name=b.gnd, side="bottom", anchorname="gnd")]
    ic = elm.Ic(pins=pins, size=(7.0, 2.4 + 1.2 * n), pinspacing=1.2, lofst=0.15, plblsize=10).right()
    d += ic.label(b.title.replace(" ", "\n", 1), loc="center", fontsize=12, ofst=(-2.0, -0.3))
    d += elm.Line().at(ic.gnd).down(0.5)
    d += elm.Ground()
    return ic


def _resonator_and_stage(d: schemdraw.Drawing, start) -> elm.Element:
    """R1 -> L1 -> node A (C1 to ground) -> RB -> 2N3904 with RE and RC. Returns the transistor."""
    d += elm.Line().at(start).right(0.6)
    d += elm.Resistor().right().label("R1\n680 Ω")
    d += elm.Inductor2(loops=4).right().label("L1 100 mH\n(DCR ≈ 200 Ω)")
    d += (a := elm.Dot().label("A", loc="top"))
    d += elm.Capacitor().down().label("C1\n10 nF", loc="bottom")
    d += elm.Ground()
    d += elm.Resistor().at(a.center).right().label("RB\n10 kΩ")
    d += (q := elm.BjtNpn(circle=True).anchor("base").label("Q1\n2N3904", loc="right", ofst=(0.1, -0.4)))
    d += elm.Resistor().at(q.emitter).down().label("RE\n470 Ω", loc="bottom")
    d += elm.Ground()
    d += elm.Resistor().at(q.collector).up().label("RC\n680 Ω", loc="bottom")
    d += elm.Vdd().label("+3.3 V")
    return q


def _return_to_pin(d: schemdraw.Drawing, node, pin, top: float) -> None:
    """Wire from an output node up over the circuit and down into the MCU's ADC pin (top side)."""
    d += elm.Line().at(node).toy(top)
    d += elm.Line().tox(pin[0])
    d += elm.Line().toy(pin[1]).dot()


def _note(d: schemdraw.Drawing, text: str) -> None:
    """A line of small print under everything drawn so far."""
    box = d.get_bbox()
    d += elm.Label().at((box.xmin, box.ymin - 0.7)).label(text, halign="left", fontsize=10)


def _supply(d: schemdraw.Drawing, pin, text: str) -> None:
    d += elm.Line().at(pin).right(0.8)
    d += elm.Vdd().label(text)


def electronic(b: Board, mcp4725_option: bool) -> schemdraw.Drawing:
    """The electronic layer wired to one board: the same circuit (layer.lib) on ESP32 and Pico."""
    d = schemdraw.Drawing(show=False)
    ic = _mcu(d, b, with_5v=False)
    _supply(d, ic.v33, "+3.3 V")
    q = _resonator_and_stage(d, ic.drive)
    d += elm.Line().at(q.collector).right(0.8)
    d += elm.Resistor().right().label("ROUT\n1 kΩ")
    d += (out := elm.Dot().label("OUT", loc="top"))
    d += elm.Capacitor().down().label("COUT\n4.7 nF", loc="bottom")
    d += elm.Ground()
    d += elm.Resistor().at(out.center).right().label("RDIV_TOP\n10 kΩ")
    d += elm.Line().right(0.8)
    d += (tap := elm.Dot().label("ADC", loc="right", ofst=(0.15, 0.35)))  # the return wire leaves upwards
    d += elm.Resistor().down().label("RDIV_BOT\n15 kΩ", loc="bottom")
    d += elm.Ground()
    _return_to_pin(d, tap.center, ic.adc, top=d.get_bbox().ymax + 0.8)
    _note(d, "OUT swings 1.37 V (saturated) .. 3.09 V (cut off); the ADC pin sees 0.6 × OUT = 0.82 .. 1.86 V.")
    if mcp4725_option:
        _mcp4725_option(d)
    return d


def _mcp4725_option(d: schemdraw.Drawing) -> None:
    """Option B for the Pico: an MCP4725 I2C DAC replaces the PWM pin (for <= ~7 kS/s)."""
    box = d.get_bbox()
    dac = elm.Ic(pins=[elm.IcPin(name="SDA", side="left", slot="3/3", anchorname="sda"),
                       elm.IcPin(name="SCL", side="left", slot="2/3", anchorname="scl"),
                       elm.IcPin(name="A0", side="left", slot="1/3", anchorname="a0"),
                       elm.IcPin(name="VDD", side="top", anchorname="vdd"),
                       elm.IcPin(name="GND", side="bottom", anchorname="gnd"),
                       elm.IcPin(name="VOUT", side="right", anchorname="vout")],
                 size=(5.0, 3.0), lofst=0.15, plblsize=10).right()
    d += dac.at((box.xmin + 9.0, box.ymin - 3.0)).anchor("vdd").label("MCP4725\nbreakout", loc="center",
                                                                        ofst=(-0.2, 0))
    d += elm.Label().at((box.xmin, box.ymin - 1.2)).label("Option B (instead of the PWM drive):",
                                                         halign="left", fontsize=11)
    d += elm.Line().at(dac.vdd).up(0.4)
    d += elm.Vdd().label("+3.3 V")
    d += elm.Line().at(dac.gnd).down(0.4)
    d += elm.Ground()
    for anchor, text in (("sda", "GP4 (I2C0 SDA, pin 6)"), ("scl", "GP5 (I2C0 SCL, pin 7)")):
        d += elm.Line().at(getattr(dac, anchor)).left(1.2)
        d += elm.Dot(open=True).label(text, loc="left")
    d += elm.Line().at(dac.a0).left(0.6)
    d += elm.Ground()
    d += elm.Line().at(dac.vout).right(1.2)
    d += elm.Dot(open=True).label("to R1 (GP15 left unconnected)", loc="right")
    _note(d, "I2C address 0x60 on MCP4725A0 modules with A0 low (e.g. SparkFun); Adafruit's breakout is 0x62.")
    _note(d, "I2C at 400 kHz limits it to about 7 kS/s: use C1 = 82 nF (C1-B in the BOM) at that rate.")


def _pwm_filter(d: schemdraw.Drawing, start) -> None:
    """GP15 PWM -> 1k/10n -> 10k/1n -> MCP6002 follower: strips the 488 kHz carrier before the class-D amp."""
    d += elm.Line().at(start).right(0.8)
    d += elm.Resistor().right().label("R2\n1 kΩ")
    d += (n1 := elm.Dot())
    d += elm.Capacitor().down().label("C2\n10 nF", loc="bottom")
    d += elm.Ground()
    d += elm.Resistor().at(n1.center).right().label("R3\n10 kΩ")
    d += (n2 := elm.Dot())
    d += elm.Capacitor().down().label("C3\n1 nF", loc="bottom")
    d += elm.Ground()
    d += elm.Line().at(n2.center).right(0.8)
    d += (op := elm.Opamp(leads=True).right().anchor("in2").label("U4A\nMCP6002", loc="center", ofst=(-0.3, 0),
                                                               fontsize=9))
    d += elm.Line().at(op.in1).up(1.0)
    d += elm.Line().tox(op.out)
    d += elm.Line().toy(op.out).dot()
    d += elm.Line().at(op.out).right(0.4)


def mechanical(b: Board, pwm: bool) -> schemdraw.Drawing:
    """DAC -> 10 µF -> 10k pot -> PAM8403 -> speaker/plate; MAX4466 mic module -> ADC pin.

    With `pwm` (the Pico) a 2-stage RC and an MCP6002 follower turn the PWM into a clean voltage first.
    """
    d = schemdraw.Drawing(show=False)
    ic = _mcu(d, b, with_5v=True)
    _supply(d, ic.v33, "+3.3 V")
    d += elm.Line().at(ic.v5).right(0.8)
    d += elm.Vdd().label("+5 V (USB)")
    if pwm:
        _pwm_filter(d, ic.drive)
    else:
        d += elm.Line().at(ic.drive).right(0.8)
    d += elm.Capacitor(polar=True).right().label("C1 10 µF\n(+ to the left)")
    d += (top := elm.Dot())
    d += elm.Line().right(0.5)
    # label on the left: the wiper's wire leaves to the right
    d += (pot := elm.Potentiometer().down().label("VR1\n10 kΩ", loc="top"))
    d += elm.Ground()
    # side slots count from the bottom up
    amp = elm.Ic(pins=[elm.IcPin(name="L in", side="left", slot="2/2", anchorname="inl"),
                       elm.IcPin(name="⊥ in", side="left", slot="1/2", anchorname="ingnd"),
                       elm.IcPin(name="5V", side="top", anchorname="vdd"),
                       elm.IcPin(name="GND", side="bottom", anchorname="gnd"),
                       elm.IcPin(name="L+", side="right", slot="2/2", anchorname="lp"),
                       elm.IcPin(name="L−", side="right", slot="1/2", anchorname="lm")],
                 size=(3.2, 3.6), lofst=0.15, plblsize=10).right()
    d += amp.at((top.center[0] + 5.5, top.center[1] + 0.5), dx=0, dy=0).anchor("inl").label(
        "PAM8403\nmodule", loc="center")
    d += elm.Line().at(pot.tap).tox(amp.inl[0] - 1.0)
    d += elm.Line().toy(amp.inl[1])
    d += elm.Line().tox(amp.inl[0])
    d += elm.Line().at(amp.ingnd).left(0.6)
    d += elm.Ground()
    d += elm.Line().at(amp.vdd).up(0.4)
    d += elm.Vdd().label("+5 V")
    d += elm.Line().at(amp.gnd).down(0.4)
    d += elm.Ground()
    d += elm.Line().at(amp.lp).right(1.6)
    d += (spk := elm.Speaker().right().anchor("in1").label("LS1 8 Ω\n+ plate", loc="right", ofst=(0.2, 0)))
    d += elm.Line().at(amp.lm).tox(spk.in2[0] - 0.6)
    d += elm.Line().toy(spk.in2[1])
    d += elm.Line().tox(spk.in2[0])
    mic = elm.Ic(pins=[elm.IcPin(name="OUT", side="left", anchorname="out"),
                       elm.IcPin(name="VCC", side="top", anchorname="vcc"),
                       elm.IcPin(name="GND", side="bottom", anchorname="gnd")],
                 size=(4.4, 2.4), lofst=0.15, plblsize=10).right()
    d += mic.at((amp.inl[0], d.get_bbox().ymax + 2.0)).anchor("out").label(
        "MAX4466\nmic module", loc="center", fontsize=10, ofst=(0.6, 0))
    d += elm.Line().at(mic.vcc).up(0.4)
    d += elm.Vdd().label("+3.3 V")
    d += elm.Line().at(mic.gnd).down(0.4)
    d += elm.Ground()
    d += elm.Line().at(mic.out).tox(ic.adc[0])
    d += elm.Line().toy(ic.adc[1]).dot()
    _note(d, "PAM8403 outputs are bridge-tied: never connect L− (or L+) to ground.  Give the amp its own "
             "GND wire to the board.")
    _note(d, "Mic 1–2 cm from the plate; its OUT idles at VCC/2 = 1.65 V: set the module gain so the "
             "loudest response stays in range.")
    if pwm:
        _note(d, "MCP6002 (DIP-8): pin 8 to +3.3 V, pin 4 to GND; unused half: pin 5 to GND, pin 6 to pin 7.")
    return d


SCHEMATICS = {
    "electronic/schematic-esp32.svg": lambda: electronic(ESP32_E, mcp4725_option=False),
    "electronic/schematic-rp2040.svg": lambda: electronic(PICO_E, mcp4725_option=True),
    "mechanical/schematic-esp32.svg": lambda: mechanical(ESP32_M, pwm=False),
    "mechanical/schematic-rp2040.svg": lambda: mechanical(PICO_M, pwm=True),
}


def main(argv: list[str] | None = None) -> None:
    """Write every schematic under hardware/ (or under --out)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HW, help="folder that holds electronic/ and mechanical/")
    ap.add_argument("--png", action="store_true", help="PNG previews (matplotlib) instead of the SVGs, to look at")
    args = ap.parse_args(argv)
    if args.png:
        schemdraw.use("matplotlib")
    for rel, draw in SCHEMATICS.items():
        path = args.out / (rel.replace(".svg", ".png") if args.png else rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        draw().save(str(path))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
