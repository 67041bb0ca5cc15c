# pdekit: `make test` sets everything up on a fresh machine and runs the tests;
# `make demo` sets everything up and runs the main job on a small default.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pdekit-installed

.PHONY: setup test test-slow test-stress demo lint bench clean

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

# The tests that start processes, threads or a Dask cluster, or wait on a clock, run
# STRESS_COUNT times beside STRESS_LOAD busy CPU loops (started and stopped here), so that a
# race shows up on a developer's machine. `make test-stress STRESS_COUNT=50` for a long soak.
STRESS_COUNT ?= 5
STRESS_LOAD ?= 2
STRESS_TESTS ?= tests/train/test_distributed.py \
	tests/train/test_cli_commands.py::test_killed_process_resumes_to_identical_weights \
	tests/data/test_generate.py::test_kill9_and_resume_gives_exactly_the_requested_samples \
	tests/data/test_generate.py::test_dask_local_cluster_matches_serial_run \
	tests/data/test_generate.py::test_shards_identical_for_one_or_two_workers \
	tests/test_cli.py::test_console_entry_point_exit_code

test-stress: $(STAMP)
	@pids=""; for i in $$(seq $(STRESS_LOAD)); do \
	  $(BIN)/python -c 'while True: pass' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; fail=0; \
	for i in $$(seq $(STRESS_COUNT)); do \
	  echo "== test-stress round $$i/$(STRESS_COUNT) beside $(STRESS_LOAD) busy loops"; \
	  OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(STRESS_TESTS) \
	    || fail=$$((fail + 1)); \
	done; \
	echo "test-stress: $$fail of $(STRESS_COUNT) rounds failed"; test $$fail -eq 0

lint: $(STAMP)
	$(BIN)/ruff check pdekit tests experiments

demo: $(STAMP)
	$(BIN)/python -m pdekit.cli.demo

bench: $(STAMP)
	$(BIN)/python experiments/bench_solvers.py --quick --json bench_solvers.json

clean:
	rm -rf $(VENV) build *.egg-info
