"""The ``leadheat`` command: a thin shell over :class:`leadheat.service.Leadheat`.

Every read command takes ``--json`` for scripts; every error is one line that says what
was wrong and where, with exit status 1.

One module per command group (:mod:`.leads`, :mod:`.keys`, :mod:`.model`, …) over the
shared :mod:`.options`, :mod:`.output` and :mod:`.state`; :mod:`.app` registers them all.
Dependencies point one way: the app imports the groups, the groups import the shared
modules, and nothing outside this package imports it but the console script and
``python -m leadheat``.
"""

from leadheat.cli.app import ERRORS, app, main

__all__ = ["ERRORS", "app", "main"]
