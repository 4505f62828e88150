# One-word commands. Each sets up .venv on first use (Python >= 3.11 on PATH as python3).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DB ?= sqlite:///leadheat.db

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/leadheat --db $(DB) init
	$(BIN)/leadheat --db $(DB) demo
	$(BIN)/leadheat --db $(DB) hot --limit 15
	@echo ""
	@echo "Next, try:"
	@echo "  $(BIN)/leadheat --db $(DB) leads --temperature warm --limit 10"
	@echo "  $(BIN)/leadheat --db $(DB) show <email from the list above>"
	@echo "  $(BIN)/leadheat --db $(DB) track someone@example.com form_submit --prop budget=20k"
	@echo "  $(BIN)/leadheat --db $(DB) hot --at 2026-01-01T00:00:00Z"
	@echo "  $(BIN)/leadheat --db $(DB) playbook show"
	@echo "  $(BIN)/leadheat --help"

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/import_events.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
