# The two commands of the README. Both run on a fresh Debian 12 machine as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast deps python-deps lock lock-check lint golden bench clean \
	ci-secrets ci-secrets-remove plan-comment nightly-issue

deps:
	./scripts/install-deps

## make python-deps: only .venv from the lock (CI's plan job: no root, no Debian packages).
python-deps:
	./scripts/install-deps --python-only

## make lock: re-resolve requirements/lock.txt and requirements/relay.txt (with hashes) after
## a change to pyproject.toml's dependencies; existing pins are kept where they still fit.
lock: python-deps
	$(PY) scripts/lock.py compile

## make lock-check: fails when requirements/*.txt are stale against pyproject.toml.
lock-check:
	$(PY) scripts/lock.py check

## make demo: the main job — validate the example repository, build the lab, deploy
## it, send a DKIM-signed message through a relay, and leave the lab running.
demo: deps
	$(VENV)/bin/relayops validate
	$(VENV)/bin/relayops summary
	$(VENV)/bin/relayops demo

## make test: install what the tests need, then run the whole suite and the linters.
test: deps
	$(MAKE) lock-check
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	MYPYPATH=src:tests $(VENV)/bin/mypy --strict --explicit-package-bases tests/support
	PYTHONPATH=src $(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

## make test-fast: the edit loop — linters, then every test that starts no daemon and
## needs no lab (`real` and `lab` are speed classes; `make test` runs them all).
test-fast:
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	MYPYPATH=src:tests $(VENV)/bin/mypy --strict --explicit-package-bases tests/support
	$(VENV)/bin/pytest -m "not real and not lab"

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
	$(PY) bench/policyd/burst.py
	$(PY) bench/policyd/fault.py
	$(PY) bench/lab/bench_lab.py --repeat 3
	$(PY) bench/deploy/run.py

## CI glue (.github/workflows, docs/ci.md): every workflow step is a make target or a
## relayops command; these read their inputs from the environment the step sets.
ci-secrets:
	./scripts/ci-secrets write

ci-secrets-remove:
	./scripts/ci-secrets remove

plan-comment:
	./scripts/plan-comment out/plan/plan.md

nightly-issue:
	./scripts/nightly-issue "$$NIGHTLY_RESULT"

golden: deps
	$(VENV)/bin/pytest tests/golden --update-golden

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
