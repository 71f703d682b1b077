"""No import cycles between the modules of ``src/stkd``.

The graph is built from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` counts, at module level and inside functions (a function-local import that closes a
cycle still fails when the function first runs). Relative imports are resolved; ``from pkg import name``
points at the submodule ``pkg.name`` when there is one, else at ``pkg`` itself. An edge from a module to
one of its own parent packages is not counted: Python initialises the parents before the child anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "stkd"


def _modules(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (``pkg/__init__.py`` is ``pkg``)."""
    mods = {}
    for f in sorted((src / package).rglob("*.py")):
        name = ".".join(f.relative_to(src).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    return mods


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, mods: dict[str, Path]) -> set[str]:
    """The package modules that one import statement loads (deepest known module for each name)."""

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:  # relative: strip `level` parts (a package's own __init__ counts as one of them)
            parts = module.split(".")
            keep = len(parts) - node.level + (1 if is_package else 0)
            stem = ".".join(parts[:keep] + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in mods else stem for a in node.names]
    return {t for t in map(known, names) if t is not None}


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    mods = _modules(src, package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), filename=str(f))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for t in _targets(m, f.name == "__init__.py", node, mods):
                    if t != m and not m.startswith(t + "."):
                        graph[m].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for root in sorted(graph):
        if colour[root] != WHITE:
            continue
        path = [root]
        stack = [iter(sorted(graph[root]))]
        colour[root] = GREY
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour[nxt] == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert len(graph) > 50
    assert "stkd.runs" in graph["stkd.pipeline"]  # `from stkd.runs import (...)`
    assert "stkd.errors" in graph["stkd"]  # `from stkd.errors import ...` in the package's __init__


def test_the_cycle_finder_reports_the_path(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")  # function-local, relative
    (pkg / "c.py").write_text("from . import a\n")  # `from pkg import a`: the submodule pkg.a
    graph = import_graph(tmp_path, "pkg")
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) is None


def test_no_import_cycles_in_stkd():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
