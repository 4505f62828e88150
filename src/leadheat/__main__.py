"""``python -m leadheat`` runs the command line."""

from leadheat.cli import main

main()
