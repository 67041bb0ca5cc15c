# pdekit: `make test` sets everything up on a fresh machine and runs the tests;
# `make demo` sets everything up and runs the main job on a small default.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pdekit-installed

.PHONY: setup test test-slow demo lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check pdekit tests experiments

demo: $(STAMP)
	$(BIN)/python -m pdekit.demo

bench: $(STAMP)
	$(BIN)/python experiments/bench_solvers.py --quick --json bench_solvers.json

clean:
	rm -rf $(VENV) build *.egg-info
