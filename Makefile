# The two commands of the README. Both run on a fresh Debian 12 machine as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test deps lint golden bench clean

deps:
	./scripts/install-deps

## make demo: the main job — validate the example repository, build the lab, deploy
## it, send a DKIM-signed message through a relay, and leave the lab running.
demo: deps
	$(VENV)/bin/relayops validate
	$(VENV)/bin/relayops summary
	$(VENV)/bin/relayops demo

## make test: install what the tests need, then run the whole suite and the linters.
test: deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	PYTHONPATH=src $(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

lint: deps
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/mypy

## make bench: every benchmark under bench/ (slow; results are written beside each script).
bench: deps
	./scripts/bench-deps
	$(PY) bench/validate/run.py
	$(PY) bench/render/bench_render.py --runs 3
	$(PY) bench/policyd/run.py
	$(PY) bench/lab/bench_lab.py --repeat 3
	$(PY) bench/deploy/run.py

golden: deps
	$(VENV)/bin/pytest tests/golden --update-golden

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
