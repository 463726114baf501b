# Set-up for a fresh machine with only Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate demo demo-reset browser bench bench-pages clean

# Where `make run` serves: make run PORT=8001, make run ADDR=0.0.0.0 (every interface).
ADDR ?= 127.0.0.1
PORT ?= 8000

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

.env:
	@echo "Writing .env for local development (DEBUG on, a fresh random SECRET_KEY)"
	@printf 'DEBUG=true\nSECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env

migrate: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput

# The demo account goes into an empty database only, so an owner's edits survive `make run` again.
demo: migrate
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py load_demo

# Puts the demo account, its rows and the demo passwords back as load_demo creates them.
demo-reset: migrate
	$(BIN)/python manage.py load_demo --reset

# Web server and django-q2 worker together on http://$(ADDR):$(PORT) (Ctrl-C stops both).
run: demo
	$(BIN)/python manage.py run_local --addr $(ADDR):$(PORT)

# Debian's Chromium for the browser tests, installed when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The suite in TEST_WORKERS processes (pytest-xdist: each has its own test database, test_<name>_gw0 and so on, on
# PostgreSQL), each taking a whole file at a time so that a file's end-to-end stack starts once; TEST_WORKERS=0 runs
# it in this process. The 20 slowest tests are listed at the end of every run.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=20 $(PYTEST_ARGS)

# manage.py benchmark: gunicorn -w 4 + qcluster on a throwaway PostgreSQL database, driven through the local phone
# network; writes tests/benchmarks/results/benchmark.json and benchmark.png (about 7 minutes).
# The django-q2 worker uses Redis (database 15) as in the recommended production set-up; BENCH_REDIS_URL= (empty)
# measures the ORM broker instead.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/15

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	DEBUG=true $(BIN)/python manage.py benchmark --database-url $(BENCH_DATABASE_URL) --redis-url "$(BENCH_REDIS_URL)" $(BENCH_ARGS)

# manage.py bench_pages: every page and API endpoint on a large customer's account (500 people, 50,000 incidents)
# in a throwaway PostgreSQL database: queries, median server time and size (a few minutes, mostly building it).
bench-pages: $(STAMP)
	DEBUG=true $(BIN)/python manage.py bench_pages --database-url $(BENCH_DATABASE_URL) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3* .pytest_cache .hypothesis staticfiles
