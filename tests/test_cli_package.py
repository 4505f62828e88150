"""The CLI is one package whose imports point one way (issue 22): the app imports the command
groups, the groups import the shared options, output and state, and nothing imports back.

Read from the source with ``ast``, every import counted, those inside functions too: a lazy
``from leadheat.cli import _open`` in a domain module is as much a circle as one at the top.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CLI = "leadheat.cli"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((SRC / "leadheat").rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The leadheat modules ``name`` imports: ``from package import module`` names the module."""
    path = _modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in _modules() else base)
    return {module for module in found if module in _modules()}


def _in_cli(name: str) -> bool:
    return name == CLI or name.startswith(CLI + ".")


def test_only_the_entry_points_import_the_cli() -> None:
    offenders = {
        name: sorted(filter(_in_cli, _imports(name)))
        for name in _modules()
        if not _in_cli(name) and name != "leadheat.__main__"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_only_the_package_imports_the_app() -> None:
    importers = {name for name in _modules() if f"{CLI}.app" in _imports(name)}
    assert importers == {CLI}


def test_the_cli_modules_import_no_circle() -> None:
    graph = {
        name: {found for found in _imports(name) if _in_cli(found) and found != CLI}
        for name in _modules()
        if _in_cli(name) and name != CLI
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join([*path, name])
        if name not in done:
            for found in sorted(graph[name]):
                visit(found, (*path, name))
            done.add(name)

    assert f"{CLI}.app" in graph and f"{CLI}.options" in graph
    for name in sorted(graph):
        visit(name, ())
