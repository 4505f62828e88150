"""The layers of leadheat, read from its own imports: every import statement, those inside
functions and under ``TYPE_CHECKING`` included, relative ones resolved.

From the bottom:

1. **the domain** (:data:`DOMAIN`): ``times``, ``identity``, ``playbook`` and ``scoring/``:
   values and rules, no I/O;
2. **storage**, ``store/``: tables, queries and transactions, knowing no business rule beyond
   the domain's;
3. **the work over stored leads**: ``speed/`` (the reaction to a write runs there, on the
   write's connection), ``ingest/``, ``predict/``, ``engage/``, ``analytics/``,
   ``delivery/``, ``spark/``, and ``service.py`` (the ``Leadheat`` entry point) over them;
4. **the faces**: ``api/``, ``web/`` and the CLI.

An import points down or sideways within its layer, never up, and no modules import each
other in a circle (the CLI's own circle goes with the CLI package).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import leadheat

SOURCE = Path(leadheat.__file__).parent
DOMAIN = ("leadheat.times", "leadheat.identity", "leadheat.playbook", "leadheat.scoring")
"""The bottom layer: what ``store/`` may import besides itself."""


@dataclass(frozen=True)
class Import:
    """One import of a leadheat module by another, where it is written."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def _modules() -> dict[str, Path]:
    """Every module under ``src/leadheat`` by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _module(name: str) -> str | None:
    """The leadheat module a dotted name is found in (a name imported from a module is
    found in that module), or ``None`` outside leadheat."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(importer: str, text: str | None = None) -> Iterator[Import]:
    """The leadheat modules ``importer`` imports (its file's, or those in ``text``)."""
    path = MODULES[importer]
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    if text is None:
        text = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            names = [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            imported = _module(name)
            if imported is not None and imported != importer:
                yield Import(importer, imported, node.lineno)


IMPORTS = [found for importer in MODULES for found in _imports(importer)]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def _is_cli(name: str) -> bool:
    """The CLI: ``leadheat.cli`` (module or package), a domain's ``cli`` module, ``__main__``."""
    return _within(name, "leadheat.cli") or name.rpartition(".")[2] in ("cli", "__main__")


def _circles(imports: list[Import]) -> str:
    """Each group of modules that import each other in a circle, one line each: a shortest
    circle through it, and every module of the group when there are more (Tarjan's strongly
    connected components)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for found in imports:
        graph[found.importer].add(found.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in sorted(graph[name]):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = set()
            while not group or name not in group:
                group.add(stack.pop())
            if len(group) > 1:
                groups.append(group)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    lines = []
    for group in groups:
        circle = _round(graph, group)
        knot = f" (one way round {', '.join(sorted(group))})" if len(group) >= len(circle) else ""
        lines.append(" -> ".join(circle) + knot)
    return "\n".join(lines)


def _round(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest circle from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for other in sorted(graph[name] & group):
            if other == start:
                return [*paths[name], start]
            if other not in paths:
                paths[other] = [*paths[name], other]
                queue.append(other)
    raise AssertionError(f"{sorted(group)} is no circle")


def test_the_walk_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    seen = {(found.importer, found.imported) for found in IMPORTS}
    assert ("leadheat.rescore", "leadheat.spark.rescore") in seen  # inside a function
    assert ("leadheat.engage.lists", "leadheat.service") in seen  # under TYPE_CHECKING only
    assert ("leadheat.store.models", "leadheat.times") in seen


def test_the_walk_resolves_relative_imports_and_names_imported_from_a_module() -> None:
    text = (
        "from . import models\n"
        "from ..speed.dispatch import Dispatcher\n"
        "def later():\n"
        "    import leadheat.predict.asof as asof\n"
        "from leadheat import Leadheat\n"
        "import json\n"
    )
    assert [found.imported for found in _imports("leadheat.store.leads", text)] == [
        "leadheat.store.models",
        "leadheat.speed.dispatch",
        "leadheat",
        "leadheat.predict.asof",
    ]


def test_store_imports_only_itself_and_the_domain() -> None:
    upward = [
        str(found)
        for found in IMPORTS
        if _within(found.importer, "leadheat.store")
        and not _within(found.imported, "leadheat.store", *DOMAIN)
    ]
    assert upward == []


def test_scoring_imports_only_the_domain() -> None:
    upward = [
        str(found)
        for found in IMPORTS
        if _within(found.importer, "leadheat.scoring") and not _within(found.imported, *DOMAIN)
    ]
    assert upward == []


def test_the_domain_imports_only_the_domain() -> None:
    upward = [
        str(found)
        for found in IMPORTS
        if _within(found.importer, *DOMAIN) and not _within(found.imported, *DOMAIN)
    ]
    assert upward == []


def test_only_the_cli_imports_the_cli() -> None:
    into_the_cli = [
        str(found) for found in IMPORTS if _is_cli(found.imported) and not _is_cli(found.importer)
    ]
    assert into_the_cli == []


def test_no_circle_among_modules() -> None:
    assert _circles(IMPORTS) == ""
