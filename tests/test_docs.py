"""Docs that cannot drift: a command, option, playbook key, JSON key or setting that the code
has and the docs lack fails here (in the spirit of datasette's ``tests/test_docs.py``).

The command tree is read from the Typer app itself, the playbook keys and defaults from the
pydantic models, the JSON keys from real output, so adding any of them without a line of
documentation is a failing test, and so is a documented default that is no longer the default.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import pytest
import typer.main
from pydantic import BaseModel
from typer.testing import CliRunner

from leadheat.cli import app
from leadheat.playbook import Playbook
from leadheat.service import Leadheat
from leadheat.settings import Settings
from leadheat.times import parse_duration
from leadheat.views import row_json, view_json

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"
PLAYBOOK_DOC = ROOT / "docs" / "playbook.md"
CHANGELOG = ROOT / "CHANGELOG.md"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_CODE = re.compile(r"`([^`]+)`")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|")


# -- reading markdown -----------------------------------------------------------------------
@cache
def _read(path: Path) -> str:
    return path.read_text("utf-8")


@cache
def _sections(path: Path) -> tuple[tuple[str, str], ...]:
    """``(heading, text up to the next heading)`` for each heading outside code blocks."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in _read(path).splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            sections.append((heading.group(2), []))
        else:
            sections[-1][1].append(line)
    return tuple((title, "\n".join(lines)) for title, lines in sections)


def _code_spans(text: str | None) -> set[str]:
    """The `code` spans of markdown text, outside fenced code blocks, spaces collapsed."""
    assert text is not None
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return {" ".join(span.split()) for span in _CODE.findall(prose)}


def _section(path: Path, wanted: str) -> str | None:
    """The text under the first heading whose first code span is ``wanted``."""
    for title, text in _sections(path):
        spans = _CODE.findall(title)
        if spans and spans[0] == wanted:
            return text
    return None


def _console_commands(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line, argv)`` of every ``$ leadheat …`` line in the file's console blocks."""
    block = None
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if line.startswith("```"):
            block = None if block is not None else line[3:].strip()
            continue
        if block != "console" or not line.startswith("$ "):
            continue
        words = shlex.split(line[2:], comments=True)
        while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
            words.pop(0)
        if ">" in words:
            words = words[: words.index(">")]
        if words and words[0] == "leadheat":
            yield number, words[1:]


# -- the command tree -------------------------------------------------------------------------
def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(typer.main.get_command(app)))


def _name(path: tuple[str, ...]) -> str:
    return " ".join(("leadheat", *path))


def _options(command: Any) -> list[str]:
    return [
        opt
        for param in command.params
        if param.param_type_name == "option"
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--") and opt != "--help"
    ]


def _arguments(command: Any) -> list[str]:
    return [
        param.metavar or param.name.upper()
        for param in command.params
        if param.param_type_name == "argument"
    ]


def test_the_command_tree_is_really_walked() -> None:
    names = {_name(path) for path in COMMANDS}
    assert {"leadheat", "leadheat import events", "leadheat playbook apply", "leadheat show"} <= (
        names
    )
    assert len(names) >= 20
    assert "--skip-bad" in _options(COMMANDS[("import", "events")])
    assert "--db" in _options(COMMANDS[()])
    assert _arguments(COMMANDS[("track",)]) == ["LEAD", "TYPE"]


@pytest.mark.parametrize("path", list(COMMANDS), ids=_name)
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    name = _name(path)
    assert _section(CLI_DOC, name) is not None or name in _code_spans(_read(CLI_DOC)), (
        f"docs/cli.md has no heading or `code` for {name!r}"
    )


@pytest.mark.parametrize("path", list(COMMANDS), ids=_name)
def test_every_option_and_argument_is_documented(path: tuple[str, ...]) -> None:
    command = COMMANDS[path]
    text = _section(CLI_DOC, _name(path)) or _read(CLI_DOC)
    for option in _options(command):
        assert re.search(rf"{re.escape(option)}(?![\w-])", text), (
            f"docs/cli.md does not document {option} of `{_name(path)}` in its section"
        )
    for argument in _arguments(command):
        assert argument in text, (
            f"docs/cli.md does not name the argument {argument} of `{_name(path)}`"
        )


def _examples() -> list[tuple[str, list[str]]]:
    return [
        (f"{path.name}:{line}", argv)
        for path in (README, CLI_DOC, PLAYBOOK_DOC)
        for line, argv in _console_commands(path)
    ]


def test_the_docs_have_examples() -> None:
    commands_shown = {" ".join(w for w in argv if not w.startswith("-")) for _, argv in _examples()}
    assert len(_examples()) >= 30
    assert any(shown.startswith("import events") for shown in commands_shown)


@pytest.mark.parametrize(("where", "argv"), _examples(), ids=[w for w, _ in _examples()])
def test_every_example_command_parses(where: str, argv: list[str]) -> None:
    """Each ``$ leadheat …`` example names real commands and options (checked with --help,
    which parses everything before it and runs nothing)."""
    result = CliRunner().invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, f"{where}: leadheat {shlex.join(argv)}\n{result.output}"


# -- JSON shapes ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shown() -> tuple[dict[str, Any], dict[str, Any]]:
    """Real ``show --json`` and ``leads --json`` data for a lead with one of everything."""
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with Leadheat("sqlite://", clock=lambda: now) as lh:
        lh.init()
        lh.track("ana@example.com", "trial_signup", now - timedelta(hours=2))
        lh.evidence("ana@example.com", "budget", "EUR 30k")
        lh.touch("ana@example.com", "call", result="connected")
        _, book = lh.playbook()
        view = view_json(lh.show("ana@example.com"), book.fit.qualified_at)
        (row,) = lh.leads()
    return view, row_json(row)


def test_show_json_keys_are_documented(shown: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, _ = shown
    documented = _code_spans(_section(CLI_DOC, "leadheat show"))
    nested = {
        "show --json": view,
        "lead": view["lead"],
        "explanation": view["explanation"],
        "explanation.fit": view["explanation"]["fit"],
        "explanation.heat[]": view["explanation"]["heat"][0],
        "evidence.budget": view["evidence"]["budget"],
        "touches[]": view["touches"][0],
    }
    missing = {where: sorted(set(data) - documented) for where, data in nested.items()}
    assert not any(missing.values()), f"undocumented in docs/cli.md `leadheat show`: {missing}"


def test_list_json_keys_are_documented(shown: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, row = shown
    documented = _code_spans(_section(CLI_DOC, "leadheat leads"))
    assert not set(row) - documented, sorted(set(row) - documented)


# -- the playbook -----------------------------------------------------------------------------
def _model(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """``("table" | "map" | "array", model)`` when a field holds TOML tables, else ``None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table", annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType):
        found = [m for m in map(_model, args) if m is not None]
        return found[0] if found else None
    if origin is dict and _model(args[1]) is not None:
        return "map", args[1]
    if origin is list and _model(args[0]) is not None:
        return "array", args[0]
    return None


def _playbook_tables(
    model: type[BaseModel] = Playbook, path: str = ""
) -> Iterator[tuple[str, type[BaseModel], str]]:
    """``(heading code, model, dotted path)`` of every table of the playbook schema."""
    heading = "Top level" if not path else None
    for name, field in model.model_fields.items():
        found = _model(field.annotation)
        if found is None:
            continue
        kind, sub = found
        dotted = f"{path}.{name}" if path else name
        if kind == "map":
            dotted += ".TYPE"
        yield (f"[[{dotted}]]" if kind == "array" else f"[{dotted}]"), sub, dotted
        yield from _playbook_tables(sub, dotted)
    if heading is not None:
        yield heading, model, ""


def _rows(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := _ROW.match(line))}


def _top_level() -> str | None:
    for title, text in _sections(PLAYBOOK_DOC):
        if title == "Top level":
            return text
    return None


def test_the_playbook_schema_is_really_walked() -> None:
    tables = {heading for heading, _, _ in _playbook_tables()}
    assert {"Top level", "[decay]", "[fit]", "[evidence]", "[temperature]"} <= tables
    assert {"[grade]", "[ingest]", "[signals.TYPE]", "[[signals.TYPE.rules]]", "[[fit.rules]]"} <= (
        tables
    )


@pytest.mark.parametrize(
    ("heading", "model"),
    [(heading, model) for heading, model, _ in _playbook_tables()],
    ids=[heading for heading, _, _ in _playbook_tables()],
)
def test_every_playbook_key_is_documented_with_its_default(
    heading: str, model: type[BaseModel]
) -> None:
    text = _top_level() if heading == "Top level" else _section(PLAYBOOK_DOC, heading)
    assert text is not None, f"docs/playbook.md has no heading for `{heading}`"
    rows = _rows(text)
    for name, field in model.model_fields.items():
        if _model(field.annotation) is not None:
            continue  # a table of its own, with its own heading
        assert name in rows, f"docs/playbook.md `{heading}` has no row for `{name}`"
        cell = rows[name]
        where = f"docs/playbook.md `{heading}` `{name}`"
        if field.is_required():
            assert cell.startswith("required"), f"{where}: the key is required"
            continue
        default = field.get_default(call_default_factory=True)
        if not cell.startswith("`"):
            assert default is None, f"{where}: write the default as a TOML value, e.g. `{default}`"
            continue
        value = tomllib.loads(f"value = {cell.split('`')[1]}")["value"]
        if isinstance(default, timedelta):
            value = parse_duration(value)
        assert value == default, f"{where}: documented default {value!r}, schema has {default!r}"


def test_playbook_versioning_and_errors_are_documented() -> None:
    text = _read(PLAYBOOK_DOC)
    for phrase in ("playbook apply", "playbook history", "line N, key.path", "re-score"):
        assert phrase in text


# -- README, settings, changelog --------------------------------------------------------------
def test_readme_first_screen_has_the_two_setup_commands() -> None:
    first_screen = "\n".join(_read(README).splitlines()[:40])
    assert "make run" in first_screen
    assert "make test" in first_screen


def test_every_setting_is_documented() -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    assert Settings.model_fields, "Settings has no fields: the walk is broken"
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias if isinstance(field.validation_alias, str) else None
        variable = (variable or f"{prefix}{name}").upper()
        assert variable in _read(README), f"README.md does not mention {variable}"
        if field.default is not None:
            assert str(field.default) in _read(README), f"README.md lacks {variable}'s default"


def test_every_make_target_is_documented() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    assert phony is not None
    for target in phony.group(1).split():
        assert f"make {target}" in _read(README), f"README.md does not mention `make {target}`"


def test_changelog_has_an_unreleased_section() -> None:
    assert "## [Unreleased]" in _read(CHANGELOG)
