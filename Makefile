# SynTrack: `make run` sets up and starts everything, `make test` runs the suite, `make bench` measures,
# `make demo` serves 30 days of simulated history from a throw-away database (no keys needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run demo test bench fuzz reliability lint clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

.env:
	cp .env.example .env
	@echo "Created .env from .env.example: put your SYNTHETIC_API_KEY / ZAI_API_KEY there."

run: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py serve

demo: $(VENV)/.installed
	$(PY) tools/run_demo.py

# Two workers: most of the process tests wait on pollers and timers. The upstream-fault table's runs are one
# fixture, kept on one worker by its xdist group.
PYTEST_ARGS ?= -n 2 --dist loadgroup

test: $(VENV)/.test-installed
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Not a test: minutes to an hour (BENCH_ARGS="--days 1,30 --db sqlite" for a quick run; see bench/run.py).
bench: $(VENV)/.installed
	$(PY) bench/run.py $(BENCH_ARGS)

# schemathesis against the real gunicorn and /api/openapi.json, on a throw-away database (DATABASE_URL's
# server when it names PostgreSQL); a few minutes. FUZZ_ARGS="--max-examples 50 --seed 1" for more.
fuzz: $(VENV)/.test-installed
	$(PY) tools/fuzz_api.py $(FUZZ_ARGS)

# Issue 10, too long for `make test`: the soak (tools/soak.py: 10,000 polls with injected faults) and the
# load test (tools/load_test.py: the poller every 10 s under 60 s of mixed load on 4 gunicorn workers),
# each on a throw-away SQLite database, then on PostgreSQL when DATABASE_URL names it (a database of
# its own beside DATABASE_URL's, dropped after); a few minutes each. SOAK_ARGS="--polls 2000", LOAD_ARGS="--seconds 20".
reliability: $(VENV)/.test-installed
	env -u DATABASE_URL $(PY) tools/soak.py $(SOAK_ARGS)
	env -u DATABASE_URL $(PY) tools/load_test.py $(LOAD_ARGS)
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) \
	  echo "$(PY) tools/soak.py $(SOAK_ARGS)  # PostgreSQL" && $(PY) tools/soak.py $(SOAK_ARGS) && \
	  echo "$(PY) tools/load_test.py $(LOAD_ARGS)  # PostgreSQL" && $(PY) tools/load_test.py $(LOAD_ARGS);; \
	esac

clean:
	rm -rf $(VENV) staticfiles .demo
