"""The hardware guide (hardware/) is whole and agrees with itself, the netlist and the firmware's board files.

- every SVG parses as XML with an <svg> root and real drawing content, and the schematics name the board pins;
- every Markdown page renders (balanced code fences, rectangular tables, a title) and every relative link,
  image and #anchor in it resolves;
- every bill of materials parses, has the expected columns, a TOTAL row equal to the sum, and the page that
  links it states that total; the electronic BOMs carry the netlist's component values;
- the wiring tables name the pins the firmware board files use (firmware/boards/*.json), and the pins the
  guide documents for each layer and board.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_spice import LIB, read_layer, spice_number

ROOT = Path(__file__).resolve().parents[1]
HW = ROOT / "hardware"
BOARDS = ROOT / "firmware" / "boards"

BOM_COLUMNS = ["ref", "qty", "part", "value", "maker", "part_number", "unit_usd", "note"]
# pins each build page (and its schematic) documents, besides whatever the firmware board files say
DOCUMENTED_PINS = {
    "electronic/esp32": ["GPIO25", "GPIO34"],
    "electronic/rp2040": ["GP15", "GP26", "GP4", "GP5", "GP23"],
    "mechanical/esp32": ["GPIO25", "GPIO35"],
    "mechanical/rp2040": ["GP15", "GP27"],
}
SVG_NS = "{http://www.w3.org/2000/svg}"
DRAWING_TAGS = {"path", "line", "polyline", "polygon", "circle", "ellipse", "rect", "text"}

MARKDOWN = sorted(HW.rglob("*.md"))
SVGS = sorted(HW.rglob("*.svg"))
BOMS = sorted(HW.rglob("bom-*.csv"))


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{1,2}(?=\w)|(?<=\w)[`*_]{1,2}", "", heading.strip()) if "`" in heading else heading.strip()
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def headings(md: Path) -> set[str]:
    out, fenced = set(), False
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            out.add(slug(m.group(1)))
    return out


def links(md: Path) -> list[str]:
    """Targets of [text](target) and ![alt](target) outside code fences and inline code."""
    text = re.sub(r"```.*?```", "", md.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)


def table_rows(md: Path) -> list[str]:
    return [ln for ln in md.read_text().splitlines() if ln.startswith("|")]


def test_guide_has_the_pages_the_issue_asks_for() -> None:
    for rel in ("README.md", "first-run.md", "calibration.md", "troubleshooting.md", "electronic/README.md",
                "electronic/layer.lib", "electronic/layer.cir", "mechanical/README.md"):  # fmt: skip
        assert (HW / rel).is_file(), rel
    for page in DOCUMENTED_PINS:
        assert (HW / f"{page}.md").is_file(), page
        layer, board = page.split("/")
        assert (HW / layer / f"schematic-{board}.svg").is_file() and (HW / layer / f"bom-{board}.csv").is_file()


@pytest.mark.parametrize("svg", SVGS, ids=_rel)
def test_svg_parses_and_draws_something(svg: Path) -> None:
    root = ET.parse(svg).getroot()
    assert root.tag in ("svg", SVG_NS + "svg"), f"root element is {root.tag}"
    assert root.get("viewBox") or (root.get("width") and root.get("height")), "no size"
    drawn = [el for el in root.iter() if el.tag.removeprefix(SVG_NS) in DRAWING_TAGS]
    assert len(drawn) >= 40, f"only {len(drawn)} drawing elements"
    texts = "".join("".join(el.itertext()) for el in root.iter() if el.tag.removeprefix(SVG_NS) == "text")
    assert len(texts) >= 100, "hardly any labels"


@pytest.mark.parametrize("page", sorted(DOCUMENTED_PINS))
def test_schematic_names_the_pins(page: str) -> None:
    layer, board = page.split("/")
    root = ET.parse(HW / layer / f"schematic-{board}.svg").getroot()
    texts = " ".join(root.itertext())
    for pin in DOCUMENTED_PINS[page]:
        if pin != "GP23":  # GP23 is internal to the Pico: nothing to draw
            assert re.search(rf"\b{pin}\b", texts), f"{page} schematic does not name {pin}"


@pytest.mark.parametrize("md", MARKDOWN, ids=_rel)
def test_markdown_renders(md: Path) -> None:
    text = md.read_text()
    assert text.startswith("# "), "a page starts with its title"
    assert text.count("```") % 2 == 0, "unbalanced code fence"
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            widths = {len(re.split(r"(?<!\\)\|", row.strip())) for row in block}
            assert len(widths) == 1, f"table rows have different column counts: {block[0]}"
            assert re.fullmatch(r"\|( *:?-+:? *\|)+", block[1].strip()), f"no header separator: {block[0]}"
            block = []


@pytest.mark.parametrize("md", MARKDOWN, ids=_rel)
def test_markdown_links_resolve(md: Path) -> None:
    found = links(md)
    assert found, "a page of this guide links to something"
    for target in found:
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        assert dest.exists(), f"{target}: {dest} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in headings(dest), f"{target}: no heading #{anchor} in {_rel(dest)}"


def read_bom(path: Path) -> tuple[list[dict[str, str]], float]:
    """Rows (without TOTAL) and the TOTAL row's price."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == BOM_COLUMNS, f"columns {reader.fieldnames}"
        rows = list(reader)
    assert rows and rows[-1]["ref"] == "TOTAL", "the last row is TOTAL"
    return rows[:-1], float(rows[-1]["unit_usd"])


@pytest.mark.parametrize("bom", BOMS, ids=_rel)
def test_bom_parses_and_totals(bom: Path) -> None:
    rows, total = read_bom(bom)
    assert len({r["ref"] for r in rows}) == len(rows), "duplicate refs"
    for r in rows:
        assert r["ref"] and r["part"], r
        assert int(r["qty"]) >= 0 and float(r["unit_usd"]) >= 0, r
    assert sum(int(r["qty"]) >= 1 for r in rows) >= 5
    assert total == pytest.approx(sum(int(r["qty"]) * float(r["unit_usd"]) for r in rows), abs=0.005)
    pages = [md for md in MARKDOWN if bom.name in links(md) and md.parent == bom.parent]
    assert pages, f"no page links {bom.name}"
    assert any(f"${total:.2f}" in md.read_text() for md in pages), f"no page states the total ${total:.2f}"


_UNITS = {"ohm": 1.0, "kohm": 1e3, "nf": 1e-9, "uf": 1e-6, "mh": 1e-3}


@pytest.mark.parametrize("board", ["esp32", "rp2040"])
def test_electronic_bom_has_the_netlist_values(board: str) -> None:
    """Every component of layer.lib is in the BOM with the same value (RL is L1's own winding resistance)."""
    rows = {r["ref"]: r for r in read_bom(HW / "electronic" / f"bom-{board}.csv")[0]}
    for name, value in read_layer(LIB.read_text()).values.items():
        if name == "RL":
            continue
        assert name in rows and int(rows[name]["qty"]) == 1, f"{name} missing from the {board} BOM"
        m = re.match(r"([\d.]+) (k?ohm|[nu]F|mH)", rows[name]["value"])
        assert m, f"{name}: cannot read value {rows[name]['value']!r}"
        assert float(m.group(1)) * _UNITS[m.group(2).lower()] == pytest.approx(value, rel=1e-9), name


def firmware_pins() -> dict[str, set[str]]:
    """Pins used by the firmware's board files, as the guide names them, per electronic build page."""
    want: dict[str, set[str]] = {}
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        prefix = {"esp32": "GPIO", "rp2040": "GP"}.get(board.get("hal", ""))
        if prefix is None:
            continue  # the simulated board has no wiring
        page = "electronic/esp32" if prefix == "GPIO" else "electronic/rp2040"
        pins = board.get("pins", {})
        assert isinstance(pins, dict), f"{path.name}: pins is not a map"
        want.setdefault(page, set()).update(f"{prefix}{n}" for n in pins.values() if isinstance(n, int))
        if "i2c_addr" in board:
            want[page].add(f"0x{board['i2c_addr']:02x}")
    return want


def test_firmware_board_files_are_covered() -> None:
    """The firmware has board files for the ESP32 and the Pico, the boards this guide's pages wire."""
    assert {"electronic/esp32", "electronic/rp2040"} <= set(firmware_pins()), f"board files in {BOARDS}"


@pytest.mark.parametrize("page", sorted(DOCUMENTED_PINS))
def test_wiring_tables_name_the_pins(page: str) -> None:
    rows = "\n".join(table_rows(HW / f"{page}.md"))
    want = set(DOCUMENTED_PINS[page]) | firmware_pins().get(page, set())
    for pin in sorted(want):
        assert re.search(rf"(?<![\w/]){re.escape(pin)}\b", rows), f"{page}.md's tables do not mention {pin}"


def test_slug_matches_github() -> None:
    assert slug("4. Find the board and check that the layer responds") == "4-find-the-board-and-check-that-the-layer-responds"
    assert slug("The board no longer answers Ctrl-C (kbd_intr)") == "the-board-no-longer-answers-ctrl-c-kbd_intr"
    assert slug("Breadboard, step by step") == "breadboard-step-by-step"


def test_spice_number_is_shared() -> None:
    assert spice_number("15k") == 15e3
