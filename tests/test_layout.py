"""The layout of host/pnn and protocol/, checked by walking every import (ARCHITECTURE.md "Where each file lives").

- no import cycle between modules;
- no upward arrow between the layers: pnn_protocol < pnn.link < pnn.devices < pnn.boards < pnn.cli;
- pnn.testing is imported by no production module;
- nothing imports another package's underscore (private) module.

Every import counts, also one inside a function: a lazy import is still an arrow. The few deliberate
exceptions are listed in ALLOWED with the reason. The checker is tried on small trees that break each
rule, so that it can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"pnn": ROOT / "host" / "pnn", "pnn_protocol": ROOT / "protocol" / "pnn_protocol"}
LAYERS = ("pnn_protocol", "pnn.link", "pnn.devices", "pnn.boards", "pnn.cli")
TESTING = "pnn.testing"
ALLOWED = {
    # pnn.devices.list_devices is kept for old callers as a lazy alias of the bench tool (devices/__init__.py)
    ("pnn.devices", "pnn.boards.discover"),
}


def modules(sources: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of each top package."""
    out: dict[str, Path] = {}
    for top, folder in sources.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules that module `name` (at `path`) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import pnn.link.url.x` -> the longest known prefix
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(sources: dict[str, Path]) -> dict[str, set[str]]:
    mods = modules(sources)
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def _layer(name: str) -> int | None:
    for rank, layer in enumerate(LAYERS):
        if name == layer or name.startswith(layer + "."):
            return rank
    return None


def _private_owner(name: str) -> str | None:
    """The package whose private module `name` is (None if no part of it is private)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def violations(edges: dict[str, set[str]], allowed: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Every broken rule, one line each."""
    out = [f"import cycle: {' <-> '.join(group)}" for group in cycles(edges)]
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            if (src, dst) in allowed:
                continue
            a, b = _layer(src), _layer(dst)
            if a is not None and b is not None and b > a:
                out.append(f"upward import: {src} ({LAYERS[a]}) imports {dst} ({LAYERS[b]})")
            if (dst == TESTING or dst.startswith(TESTING + ".")) and not (src == TESTING or src.startswith(TESTING + ".")):
                out.append(f"production module {src} imports the test harness {dst}")
            owner = _private_owner(dst)
            if owner is not None and not (src == owner or src.startswith(owner + ".")):
                out.append(f"private module: {src} imports {dst}, private to {owner}")
    return out


def test_the_real_tree_keeps_the_layout() -> None:
    edges = graph(SOURCES)
    assert "pnn.link.client" in edges and "pnn.boards.flash" in edges  # the walk found the tree
    assert "pnn.link.url" in edges["pnn.devices._facade"]
    assert violations(edges, ALLOWED) == []


@pytest.fixture
def tree(tmp_path: Path):
    """A small package tree `pnn` laid out like the real one; `write(path, code)` adds a module."""
    root = tmp_path / "pnn"

    def write(rel: str, code: str = "") -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(code)

    write("link/url.py")
    write("link/_private.py")
    write("devices/_facade.py", "from ..link.url import x\n")
    write("boards/flash.py", "from ..devices import connect\n")
    write("testing/faults.py", "from ..devices._facade import Device\n")  # testing may see everything but privates
    return root, write


def test_the_checker_passes_a_good_tree_and_names_each_broken_rule(tree) -> None:
    root, write = tree
    good = violations(graph({"pnn": root}))
    assert good == ["private module: pnn.testing.faults imports pnn.devices._facade, private to pnn.devices"]

    write("testing/faults.py", "from ..devices import Device\n")
    assert violations(graph({"pnn": root})) == []

    write("link/url.py", "def f():\n    from ..boards import flash\n")  # lazy, still upward
    write("boards/probe.py", "from ..link._private import y\n")
    write("store.py", "import pnn.testing.faults\n")
    write("a.py", "from . import b\n")
    write("b.py", "from .a import z\n")
    found = violations(graph({"pnn": root}))
    assert "upward import: pnn.link.url (pnn.link) imports pnn.boards.flash (pnn.boards)" in found
    assert "private module: pnn.boards.probe imports pnn.link._private, private to pnn.link" in found
    assert "production module pnn.store imports the test harness pnn.testing.faults" in found
    assert "import cycle: pnn.a <-> pnn.b" in found
    assert len(found) == 4, found


def test_an_allowed_exception_is_exactly_that_one_arrow(tree) -> None:
    root, write = tree
    write("devices/__init__.py", "def __getattr__(n):\n    from ..boards.discover import x\n")
    write("boards/discover.py", "from ..link.url import parse_url\n")
    write("testing/faults.py", "from ..devices import Device\n")
    edges = graph({"pnn": root})
    assert violations(edges, {("pnn.devices", "pnn.boards.discover")}) == []
    assert violations(edges, {("pnn.devices", "pnn.boards.flash")}) == [
        "upward import: pnn.devices (pnn.devices) imports pnn.boards.discover (pnn.boards)"]
