"""What the library raises when it cannot do what was asked: one family, each message saying
why and what to do, so that the CLI, the API and the dashboard can show it as it is.

>>> error = InputError("batch[3].timestamp", "is not a date")
>>> str(error), isinstance(error, LeadheatError)
('batch[3].timestamp: is not a date', True)
"""

from __future__ import annotations


class LeadheatError(ValueError):
    """A request leadheat cannot carry out; the message says why and what to do."""


class InputError(LeadheatError):
    """Bad input at a known place: ``field`` names it (``batch[3].timestamp``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownLeadError(LeadheatError):
    pass


class UnknownAccountError(LeadheatError):
    """No account is known by that key."""


class NotInitialisedError(LeadheatError):
    pass


class LeadTakenError(LeadheatError):
    """The lead someone tried to take has an owner already: ``owner`` names them."""

    def __init__(self, lead_id: int, owner: str) -> None:
        super().__init__(f"{owner} owns lead {lead_id} already: nothing was changed")
        self.lead_id = lead_id
        self.owner = owner
