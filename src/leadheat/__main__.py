"""``python -m leadheat`` runs the command line."""

from leadheat.cli import main

if __name__ == "__main__":
    main()
