# One-word commands. Each sets up .venv on first use (Python >= 3.11 on PATH as python3).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DB ?= sqlite:///leadheat.db
PORT ?= 8000

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,all]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/leadheat --db $(DB) init
	$(BIN)/leadheat --db $(DB) demo
	$(BIN)/leadheat --db $(DB) hot --limit 10
	@echo ""
	@echo "Admin API key for this local run (Authorization: Bearer <key>):"
	@$(BIN)/leadheat --db $(DB) keys create "make run (local admin)" --scope admin
	@echo ""
	@pw=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))'); \
	 LEADHEAT_PASSWORD=$$pw $(BIN)/leadheat --db $(DB) users add manager@example.com --role manager >/dev/null; \
	 echo "Dashboard: http://localhost:$(PORT)/  (sign in as manager@example.com, password $$pw)"
	@echo ""
	@echo "Try, in another terminal:"
	@echo "  curl -H 'Authorization: Bearer <key>' http://localhost:$(PORT)/api/v1/hot"
	@echo "  $(BIN)/leadheat --db $(DB) show <email from the list above>"
	@echo "  $(BIN)/leadheat --db $(DB) leads --temperature warm --limit 10"
	@echo "  $(BIN)/leadheat --db $(DB) tasks --limit 10"
	@echo "  $(BIN)/leadheat --help"
	@echo ""
	$(BIN)/leadheat --db $(DB) serve --port $(PORT)

# The suite runs on every core, a test file per process (module fixtures are built once);
# the tests marked `exclusive` (a PostgreSQL restart) run after it, alone.
test: install
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not exclusive"
	$(BIN)/python -m pytest -m exclusive tests

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# One table of ratios against references measured in the same run (a few minutes). The
# single-topic scripts (bench/import_events.py, ingest_http.py, speed_to_lead.py, predict.py,
# reliability.py) go deeper and run on their own.
bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
