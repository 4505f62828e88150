"""``playbook check`` and ``apply`` say which left-out sections fall back to the built-in
defaults and what of the shipped playbook that drops (no ``[evidence]``: no ``pain`` alias)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Cli
from leadheat.playbook import default_playbook_text


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    runner = Cli(db_url, capsys)
    assert runner("init")[0] == 0
    return runner


def _without(section: str) -> str:
    """The shipped playbook with one top-level table (and its sub-tables) cut out."""
    kept, skipping = [], False
    for line in default_playbook_text().splitlines():
        header = (
            line.strip().lstrip("[").split("]")[0].split(".")[0] if line.startswith("[") else None
        )
        if header is not None:
            skipping = header == section
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def test_check_names_each_left_out_section_and_what_it_drops(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(_without("evidence"))
    code, out, err = cli("playbook", "check", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{path}: ok"
    assert lines[1:] == [
        "note: no [evidence]: built-in defaults apply, dropping the shipped need pain, "
        "use_case; timeline timeframe, purchase_date; authority decision_maker"
    ]
    path.write_text(_without("evidence").split("[signals")[0] + "[fit]\nqualified_at = 10\n")
    code, out, _ = cli("playbook", "apply", str(path))
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert code == 0 and [note.split(":")[1] for note in notes] == [
        " no [signals]",
        " no [evidence]",
    ]
    assert "signals trial_signup, sign_up" in notes[0] and "demo_request" in notes[0]


def test_the_shipped_playbook_has_no_notes(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "shipped.toml"
    path.write_text(default_playbook_text())
    code, out, _ = cli("playbook", "check", str(path))
    assert code == 0 and out.splitlines() == [f"{path}: ok"]
