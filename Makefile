# SynTrack: `make run` sets up and starts everything, `make test` runs the suite, `make bench` measures,
# `make demo` serves 30 days of simulated history from a throw-away database (no keys needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run demo test bench lint clean

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

test: $(VENV)/.test-installed
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Not a test: minutes to an hour (BENCH_ARGS="--days 1,30 --db sqlite" for a quick run; see bench/run.py).
bench: $(VENV)/.installed
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .demo
