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
from leadheat.version import __version__

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
