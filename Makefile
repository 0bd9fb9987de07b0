# つなぐ: `make run` starts everything, `make test` runs every test. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY      := .venv/bin/python
UV      := .tools/bin/uv
MANAGE  := $(PY) manage.py
PORT    ?= 8000
export TSUNAGU_PG_PORT ?= 54329
RUN     := .local/run

.PHONY: help system venv vendor db migrate demo run stop test lint bench load clean backup restore

help:
	@echo "make run    start PostGIS, the job cluster and the web server on http://127.0.0.1:$(PORT)/ with demo data (DEBUG=1 for Django's debug mode)"
	@echo "make stop   stop what 'make run' started"
	@echo "make test   lint, types, migration check and the whole test suite (with the API fuzzer) against a real PostGIS"
	@echo "make bench  benchmarks (ratios against a baseline measured in the same run)"
	@echo "make load   N tablets + N/5 supervisors (locust) against a real gunicorn, in steps: USERS=5,10,20,40 DURATION=3m"
	@echo "make backup  pg_dump of the database (as its owner) with a manifest, into .local/backups (BACKUP_DIR=)"
	@echo "make restore FILE=path/to/x.dump [DB=name]  restore drill: into a new database, checked against the manifest"

system:
	@scripts/system-deps.sh

# The virtual environment, from the lock file (uv), rebuilt only when the lock changes.
.venv/.synced: pyproject.toml uv.lock
	@test -x $(UV) || { python3 -m venv .tools && .tools/bin/pip install -q 'uv==0.13.8'; }
	@$(UV) sync --frozen --quiet
	@touch $@

venv: .venv/.synced

# The pages' front-end packages, from the npm registry (package-lock.json), served as our own static
# files (git-ignored; no CDN): MapLibre GL for the map page, Chart.js for the reports page and the
# Noto Sans JP web font for both (scripts/vendor.sh copies them). Rebuilt only when the lock changes.
VENDOR := backend/static/vendor/.installed
$(VENDOR): package.json package-lock.json scripts/vendor.sh
	@command -v npm >/dev/null || { echo "vendor: npm is needed to install the front-end packages (apt-get install nodejs npm)"; exit 1; }
	@npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
	@scripts/vendor.sh
	@touch $@

vendor: $(VENDOR)

db: system
	@scripts/pg.sh start

migrate: db venv
	@$(MANAGE) migrate --noinput -v 0
	@$(MANAGE) createcachetable

# Reload the demo data (make run loads it once).
demo: migrate
	@$(MANAGE) load_demo

run: db venv vendor
	@mkdir -p $(RUN)
	@$(MANAGE) prepare --url http://127.0.0.1:$(PORT) --banner $(RUN)/banner.txt
	@scripts/services.sh start $(PORT)

stop:
	@scripts/services.sh stop
	@scripts/pg.sh stop

lint: venv
	@.venv/bin/ruff check .
	@.venv/bin/mypy

test: db venv vendor
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@DJANGO_SETTINGS_MODULE=backend.settings_test $(MANAGE) makemigrations --check --dry-run -v 1 >/dev/null || \
	  { echo "makemigrations --check: models changed without a migration"; exit 1; }
	@.venv/bin/pytest -q -p no:cacheprovider -n auto $(PYTEST_ARGS)

bench: db venv
	@$(PY) bench/run.py $(BENCH_ARGS)

# The load scenario over real HTTP (README "Under load"): what `make run` starts, on a database and
# port of its own, driven by locust in steps of USERS tablets, a few minutes each.
LOAD_PORT ?= 8201
LOAD_DB   ?= tsunagu_load
USERS     ?= 5,10,20,40,80
DURATION  ?= 3m
load: db venv
	@$(PY) bench/load/run.py --port $(LOAD_PORT) --db $(LOAD_DB) --steps $(USERS) --duration $(DURATION) $(LOAD_ARGS)

# Backups and the restore drill (README "Backups and the restore drill"). Against the local
# cluster, or the database of DATABASE_OWNER_URL when it is set.
backup: venv
	@scripts/backup.sh

restore: venv
	@test -n "$(FILE)" || { echo "usage: make restore FILE=path/to/backup.dump [DB=new_database_name]"; exit 2; }
	@scripts/restore.sh "$(FILE)" $(DB)

clean: stop
	rm -rf .local .venv .tools
