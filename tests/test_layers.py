"""Import layering: no import cycles, and every import goes down (or sideways) the Layers table.

The table lives in one place, ``docs/DESIGN.md`` section "Layers"; this test parses it. Sources are
read with :mod:`ast` (nothing is imported), and *every* import counts: module level, inside
functions and methods, under ``if``/``try``, ``import x``, ``from x import y`` (``y`` a submodule
when ``x/y.py`` exists), relative imports (``models/``) and ``importlib.import_module("literal")``.
Computed names (``import_module(f"kerasdl.tasks.{name}")``) cannot be resolved statically and are
not checked. Layering as in Parnas, "On the criteria to be used in decomposing systems into
modules" (CACM 1972) and "Designing software for ease of extension and contraction" (1979):
a module "uses" only modules of its own or a lower level, so each level is usable and testable
without the ones above it.

Run as a script against another tree (used to prove the test can fail)::

    python tests/test_layers.py /tmp/layers-proof
"""

from __future__ import annotations

import ast
import fnmatch
import pathlib
import re
import sys
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parents[1]
DESIGN = REPO / "docs" / "DESIGN.md"

# Source folder -> the package it installs as (pyproject.toml's package-dir).
SOURCE_ROOTS = {"kerasdl": "kerasdl", "cli": "kerasdl.cli", "models": "kerasdl.models"}

# Edges allowed although they go up the table: (importer, imported) -> why. Must stay EMPTY; an entry
# needs a comment saying why the dependency cannot be inverted.
ALLOWED: dict[tuple[str, str], str] = {}

# TEMPORARY: known violations at the time the test was written (issue #14, mid-refactor). Each entry
# must still occur (a fixed one fails the test until it is removed here), and new ones fail at once.
TEMPORARY: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    path: str
    line: int

    def where(self) -> str:
        return f"{self.src} -> {self.dst} ({self.path}:{self.line})"


def discover(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Module name -> file, for every .py under the source roots (package ``__init__`` included)."""
    modules = {}
    for folder, package in SOURCE_ROOTS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _resolve(name: str, modules) -> str | None:
    """The longest known module that ``name`` starts with (``kerasdl.runs.path`` -> ``kerasdl.runs``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports(module: str, path: pathlib.Path, modules) -> list[tuple[str, int]]:
    """Every kerasdl module ``module`` imports, at any depth, with the line of the import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    found.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in modules else _resolve(base, modules)
                if target:
                    found.append((target, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            target = _resolve(node.args[0].value, modules)
            if target:
                found.append((target, node.lineno))
    return sorted({(target, line) for target, line in found if target != module}, key=lambda f: (f[1], f[0]))


def edges(root: pathlib.Path) -> tuple[dict[str, pathlib.Path], list[Edge]]:
    modules = discover(root)
    result = []
    for module, path in modules.items():
        for target, line in imports(module, path, modules):
            result.append(Edge(module, target, str(path.relative_to(root)), line))
    return modules, result


def read_layers(design: pathlib.Path = DESIGN) -> list[tuple[str, list[str]]]:
    """The Layers table of docs/DESIGN.md, bottom first: [(layer name, [module patterns])]."""
    text = design.read_text()
    section = re.search(r"^## Layers\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"{design} has no '## Layers' section"
    layers = []
    for row in section.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        assert int(cells[0]) == len(layers), f"Layers table: row {cells[0]} out of order"
        layers.append((cells[1], re.findall(r"`([^`]+)`", cells[2])))
    assert layers, "the Layers table in docs/DESIGN.md has no rows"
    return layers


def layer_of(module: str, layers) -> int | None:
    """The layer of the most specific matching pattern: an exact name beats a wildcard, a longer
    wildcard beats a shorter one (``kerasdl.evaluation.metrics`` beats ``kerasdl.evaluation.*``)."""
    best = None
    for index, (_, patterns) in enumerate(layers):
        for pattern in patterns:
            if fnmatch.fnmatchcase(module, pattern):
                key = ("*" not in pattern, len(pattern))
                if best is None or key > best[0]:
                    best = (key, index)
    return None if best is None else best[1]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle (a -> b -> ... -> a) through each module of each strongly connected
    component (Tarjan 1972), each cycle once."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in components:
        for start in sorted(component):
            cycle = _shortest_cycle(graph, component, start)
            turn = cycle.index(min(cycle[:-1]))  # one rotation per cycle: start at its smallest module
            cycle = cycle[turn:-1] + cycle[:turn] + [cycle[turn]]
            if cycle not in cycles:
                cycles.append(cycle)
    return cycles


def _shortest_cycle(graph, component, start) -> list[str]:
    """Breadth-first within the component: the shortest path from ``start`` back to ``start``."""
    parents, queue, last = {start: None}, [start], None
    while last is None:
        node = queue.pop(0)
        if start in graph[node]:
            last = node
            break
        for nxt in sorted(graph[node] & component):
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    path = [start]
    while last is not None:
        path.append(last)
        last = parents[last]
    return path[::-1]


def check(root: pathlib.Path = REPO, design: pathlib.Path = DESIGN, exempt=frozenset()):
    """(cycles, upward edges, unplaced modules, all edges) of the tree at ``root``.

    ``exempt`` edges (importer, imported) are left out of the cycle search and of ``upward``.
    """
    modules, all_edges = edges(root)
    layers = read_layers(design)
    graph = {m: set() for m in modules}
    where = {}
    for e in all_edges:
        where.setdefault((e.src, e.dst), e)
        if (e.src, e.dst) not in exempt:
            graph[e.src].add(e.dst)
    cycles = []
    for cycle in find_cycles(graph):
        steps = [where[(a, b)] for a, b in zip(cycle, cycle[1:])]
        cycles.append(" -> ".join(cycle) + "  [" + "; ".join(f"{s.path}:{s.line}" for s in steps) + "]")
    unplaced = sorted(m for m in modules if layer_of(m, layers) is None)
    upward = []
    for e in all_edges:
        src, dst = layer_of(e.src, layers), layer_of(e.dst, layers)
        if src is not None and dst is not None and dst > src and (e.src, e.dst) not in exempt:
            upward.append(f"{e.where()}: layer {src} {layers[src][0]} imports layer {dst} {layers[dst][0]}")
    return cycles, upward, unplaced, all_edges


EXEMPT = frozenset(ALLOWED) | frozenset(TEMPORARY)


def test_no_import_cycles():
    cycles, _, _, _ = check(exempt=EXEMPT)
    assert not cycles, "import cycles (function-level imports count):\n" + "\n".join(cycles)


def test_every_module_is_in_the_layers_table():
    _, _, unplaced, _ = check()
    assert not unplaced, "add it to the Layers table in docs/DESIGN.md: " + ", ".join(unplaced)


def test_imports_go_down_the_layers():
    _, upward, _, _ = check(exempt=EXEMPT)
    assert not upward, "imports must go down or sideways (docs/DESIGN.md, Layers):\n" + "\n".join(upward)


def test_temporary_and_allowed_lists_are_not_stale():
    """An exempted edge must still exist and still be needed (upward, or on a cycle)."""
    _, upward, _, all_edges = check()
    graph = {}
    for e in all_edges:
        graph.setdefault(e.src, set()).add(e.dst)

    def reaches(start, goal):
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    up = {msg.split(" (", 1)[0] for msg in upward}
    stale = [(a, b) for a, b in sorted(EXEMPT)
             if b not in graph.get(a, ()) or (f"{a} -> {b}" not in up and not reaches(b, a))]
    assert not stale, "fixed: remove from TEMPORARY/ALLOWED in tests/test_layers.py: " + repr(stale)


def test_the_checker_sees_function_level_imports(tmp_path):
    """A cycle hidden in a function body, and an upward import, are both caught."""
    for folder in ("kerasdl", "cli", "models"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "kerasdl" / "errors.py").write_text("def f():\n    if True:\n        from kerasdl import config\n")
    (tmp_path / "kerasdl" / "config.py").write_text("from kerasdl.errors import f\n")
    (tmp_path / "models" / "resnet.py").write_text("from . import _common\nfrom ..evaluation import metrics\n")
    (tmp_path / "models" / "_common.py").write_text("")
    (tmp_path / "kerasdl" / "evaluation").mkdir()
    (tmp_path / "kerasdl" / "evaluation" / "__init__.py").write_text("")
    (tmp_path / "kerasdl" / "evaluation" / "metrics.py").write_text("")
    cycles, upward, _, all_edges = check(tmp_path)
    assert cycles == ["kerasdl.config -> kerasdl.errors -> kerasdl.config  [kerasdl/config.py:1; kerasdl/errors.py:3]"]
    assert any(m.startswith("kerasdl.errors -> kerasdl.config (kerasdl/errors.py:3)") for m in upward), upward
    pairs = {(e.src, e.dst) for e in all_edges}
    assert ("kerasdl.models.resnet", "kerasdl.models._common") in pairs
    assert ("kerasdl.models.resnet", "kerasdl.evaluation.metrics") in pairs


def main(argv: list[str]) -> int:
    """Print every cycle, upward edge (exempted ones tagged) and unplaced module of a tree."""
    root = pathlib.Path(argv[0]) if argv else REPO
    cycles, upward, unplaced, _ = check(root)
    failing_cycles, failing_upward, _, _ = check(root, exempt=EXEMPT)
    for c in cycles:
        print("CYCLE" if c in failing_cycles else "CYCLE (broken by a TEMPORARY edge)", c)
    for msg in upward:
        print("UP" if msg in failing_upward else "UP (TEMPORARY)", msg)
    for m in unplaced:
        print("UNPLACED", m, "(add it to the Layers table in docs/DESIGN.md)")
    return 1 if failing_cycles or failing_upward or unplaced else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
