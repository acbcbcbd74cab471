# Each target sets itself up: a .venv is created and the package installed on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint bench mutants reference clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job: the default comparison, offline (falls back to the embedded mnist-5k
# when full MNIST is not available).
run: $(STAMP)
	$(BIN)/initbench compare

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check initbench tests tools

# torch 2.13.0 is the CPU build on this machine's local disk; other versions download GBs.
# The eager PyTorch peer's test is skipped where torch is missing; here it runs.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0 psutil
	$(BIN)/python -m pytest tests/test_bench.py -k torch
	$(BIN)/initbench bench

# Does the suite notice plausible one-line bugs? Not part of `make test` (tens of minutes on
# 2 cores). Mutates a temporary copy, never this clone; see tools/mutants.py.
mutants: $(STAMP)
	$(BIN)/python tools/mutants.py --csv results/mutants.csv

# The committed reference comparison (README): default initializers, 5 seeds, mnist-5k.
reference: $(STAMP)
	rm -rf results/reference.tmp
	$(BIN)/initbench compare --dataset mnist-5k --seeds 5 --out results/reference.tmp --quiet
	$(BIN)/initbench plot results/reference.tmp --out results/reference.tmp/curves.png
	$(BIN)/initbench export results/reference.tmp --format markdown --out results/reference.tmp/summary.md
	rm -rf results/reference && mv results/reference.tmp results/reference

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
