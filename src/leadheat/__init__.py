"""leadheat: which leads are hot right now, and why.

The public Python API; the CLI and the HTTP API are shells over it.

>>> from datetime import UTC, datetime
>>> from leadheat import Leadheat
>>> lh = Leadheat("sqlite://", clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))
>>> lh.init()
1
>>> lh.track("ana@example.com", "form_submit").stored
1
>>> lh.leads()[0].temperature
<Temperature.WARM: 'warm'>
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from leadheat.version import __version__

if TYPE_CHECKING:
    from leadheat.identity import LeadKey, parse_lead_key
    from leadheat.playbook import Playbook, PlaybookError, default_playbook, parse_playbook
    from leadheat.scoring.heat import Engagement, Heat, HeatKey, replay_heat
    from leadheat.scoring.temperature import Temperature
    from leadheat.service import (
        Leadheat,
        LeadheatError,
        LeadInput,
        LeadRow,
        LeadTakenError,
        LeadView,
        NotInitialisedError,
        UnknownLeadError,
    )
    from leadheat.settings import Settings
    from leadheat.store.events import NewEvent, RecordReport

_HOMES = {
    "leadheat.identity": ("LeadKey", "parse_lead_key"),
    "leadheat.playbook": ("Playbook", "PlaybookError", "default_playbook", "parse_playbook"),
    "leadheat.scoring.heat": ("Engagement", "Heat", "HeatKey", "replay_heat"),
    "leadheat.scoring.temperature": ("Temperature",),
    "leadheat.service": (
        "Leadheat",
        "LeadheatError",
        "LeadInput",
        "LeadRow",
        "LeadTakenError",
        "LeadView",
        "NotInitialisedError",
        "UnknownLeadError",
    ),
    "leadheat.settings": ("Settings",),
    "leadheat.store.events": ("NewEvent", "RecordReport"),
}
"""Where each exported name lives: imported on first use (``from leadheat import Leadheat``
works as ever), so that ``import leadheat.cli`` or ``leadheat.times`` does not load the
database layer, pydantic and the scoring kernels with it."""
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "Engagement",
    "Heat",
    "HeatKey",
    "LeadInput",
    "LeadKey",
    "LeadRow",
    "LeadTakenError",
    "LeadView",
    "Leadheat",
    "LeadheatError",
    "NewEvent",
    "NotInitialisedError",
    "Playbook",
    "PlaybookError",
    "RecordReport",
    "Settings",
    "Temperature",
    "UnknownLeadError",
    "__version__",
    "default_playbook",
    "parse_lead_key",
    "parse_playbook",
    "replay_heat",
]
