"""The ``leadheat`` command: a thin shell over :class:`leadheat.service.Leadheat`.

Every read command takes ``--json`` for scripts; every error is one line that says what
was wrong and where, with exit status 1.

One module per command group (:mod:`.leads`, :mod:`.keys`, :mod:`.model`, …) over the
shared :mod:`.options`, :mod:`.output` and :mod:`.state`; :mod:`.app` registers them all,
by name, and imports a group's module only when one of its commands runs.
Dependencies point one way: the app imports the groups, the groups import the shared
modules, and nothing outside this package imports it but the console script and
``python -m leadheat``.
"""

from typing import Any

from leadheat.cli.app import app, errors, main

__all__ = ["ERRORS", "app", "main"]


def __getattr__(name: str) -> Any:
    """``ERRORS``: the errors :func:`main` prints as one line (exit status 1), a tuple of
    classes; reading it imports their modules (see :data:`leadheat.cli.app.EXPECTED`)."""
    if name == "ERRORS":
        return errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
