"""The declared public API is exactly what the package exports."""

from __future__ import annotations

import leadheat


def test_all_names_exist_and_nothing_public_is_undeclared() -> None:
    for name in leadheat.__all__:
        assert hasattr(leadheat, name), name
    public = {
        name
        for name, value in vars(leadheat).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("leadheat")
    }
    modules = {
        "cli",
        "demo",
        "ingest",
        "playbook",
        "scoring",
        "service",
        "settings",
        "store",
        "times",
        "views",
    }
    assert public - set(leadheat.__all__) - modules == set()
    assert sorted(leadheat.__all__, key=str.casefold) == sorted(
        set(leadheat.__all__), key=str.casefold
    )
