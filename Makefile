# The two commands: `make demo` (the pipelines end to end, embedded) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench airflow airflow-stop clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: $(INSTALLED)
	$(BIN)/python scripts/demo.py

test: $(INSTALLED) /usr/bin/chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

# The browser tests drive Debian's Chromium through Playwright (no `playwright install`).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# A real multi-process Airflow (PostgreSQL metadata DB, CeleryExecutor on Redis, api-server,
# scheduler, dag-processor, triggerer, two workers); left running, prints the UI and login.
airflow: $(INSTALLED)
	$(BIN)/python scripts/airflow_stack.py start

airflow-stop: $(INSTALLED)
	$(BIN)/python scripts/airflow_stack.py stop

bench: $(INSTALLED) /usr/bin/wrk
	$(BIN)/python benchmarks/extract_postgres.py --write-docs
	$(BIN)/python benchmarks/score_batch.py --write-docs
	$(BIN)/python benchmarks/drift_check.py --write-docs
	$(BIN)/python benchmarks/store_formats.py --write-docs
	$(BIN)/python benchmarks/serving.py --write-docs
	$(BIN)/python benchmarks/serving_workers.py --write-docs
	$(BIN)/python benchmarks/model_call.py

# The serving benchmark drives REST with Debian's wrk.
/usr/bin/wrk:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk

clean:
	rm -rf $(VENV) var
