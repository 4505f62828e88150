"""Negative signals (issue 20): an ``unsubscribe`` or a ``careers_view`` pulls heat down."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Cli
from leadheat.playbook import PlaybookError, parse_playbook

NEGATIVE = """
[signals.pricing_view]
points = 10
half_life = "30d"

[signals.careers_view]
points = -6
half_life = "2d"

[signals.email_click]
points = 2

[[signals.email_click.rules]]
property = "list"
equals = "unsubscribe"
points = -15
"""


def test_the_playbook_accepts_negative_points_and_still_bounds_them() -> None:
    book = parse_playbook(NEGATIVE)
    assert book.points_for("careers_view") == -6
    assert book.points_for("email_click", {"list": "unsubscribe"}) == -15
    assert book.points_for("email_click", {"list": "news"}) == 2
    with pytest.raises(PlaybookError, match=r"signals\.careers_view\.points"):
        parse_playbook("[signals.careers_view]\npoints = -2e6\n")


def test_playbook_check_accepts_a_negative_signal(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(db_url, capsys)
    assert cli("init")[0] == 0
    path = tmp_path / "negative.toml"
    path.write_text(NEGATIVE)
    code, out, err = cli("playbook", "check", str(path))
    assert code == 0 and out.startswith(f"{path}: ok"), err
