# The two commands: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test install lint schema clients bench-ingest bench-query bench-freshness bench-alerts bench-result-size bench-peers bench-instructions bench-agents bench-customers bench-sla bench-registry clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# npm tools for the client generation (openapi-typescript), pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## Serve the API on 127.0.0.1:$(PORT). Embedded (SQLite, in-process tasks) unless DATABASE_URL
## and REDIS_URL are set, in which case web, worker and beat start (and stop) together.
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py collectstatic --noinput -v 0
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} bin/serve

## The whole suite. Uses DATABASE_URL/REDIS_URL when set (CI sets both), SQLite otherwise.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

schema: install
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

## Generate a Python client (openapi-python-client) and TypeScript types (openapi-typescript) from
## the OpenAPI document into build/clients/, with the generators' default settings.
clients: install node_modules/.installed
	mkdir -p build/clients
	$(BIN)/python manage.py spectacular --format openapi-json --file build/clients/openapi.json
	node_modules/.bin/openapi-typescript build/clients/openapi.json -o build/clients/cskpi.d.ts
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/openapi-python-client generate --path build/clients/openapi.json \
		--output-path build/clients/python --overwrite

bench-ingest: install
	$(BIN)/python bench/ingest.py

bench-query: install
	$(BIN)/python bench/query.py

bench-freshness: install
	$(BIN)/python bench/freshness.py

bench-alerts: install
	$(BIN)/python bench/alert_latency.py

bench-agents: install
	$(BIN)/python bench/agents.py

bench-registry: install
	$(BIN)/python bench/customer_registry.py

bench-result-size: install
	$(BIN)/python bench/result_size.py --profile

## The API against DuckDB over the same raw rows, every dashboard shape, at 1M and 5M interactions.
bench-peers: install
	$(BIN)/python bench/peers.py --records 1000000,5000000 --runs 30

## Instructions per /metrics request under valgrind (repeatable on a loaded machine): each peers shape, 5M.
bench-instructions: install
	for shape in "by day, a year (dept" "year total" "agent, by month" "UTC" "Kolkata" "hour" "channel by month" \
		"20 departments" "p90" "distinct" "SLA" "time in state"; do \
		$(BIN)/python bench/instructions.py --shape "$$shape" --requests 5 || exit 1; done
	$(BIN)/python bench/instructions.py --ingest new --requests 5
	$(BIN)/python bench/instructions.py --ingest mixed --requests 5

bench-customers: install
	$(BIN)/python bench/customers.py

bench-sla: install
	$(BIN)/python bench/sla.py

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache node_modules build
