# Each target sets itself up: a .venv is created and the package installed on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per set of extras: `make run` installs only what a run needs (no TensorFlow);
# `make test`, `lint`, ... add the test tools and TFDS (for the TFDS tests).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install run test chromium lint bench mutants reference digits aggregate transfer deep-residual clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev,tfds]'
	touch $(RUN_STAMP) $(DEV_STAMP)

install: $(RUN_STAMP)

# The main job: the default comparison, offline (falls back to the embedded mnist-5k
# when full MNIST is not available).
run: $(RUN_STAMP)
	$(BIN)/initbench compare

# One worker per core, each test file on one worker (its module fixtures computed once).
test: $(DEV_STAMP) chromium
	$(BIN)/python -m pytest -n auto --dist loadfile

# The HTML report's browser test renders the page in headless Chromium (Debian's package).
# Installed once when missing: as root directly (CI), else through sudo if it needs no
# password; where neither works (or there is no apt-get) the test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "note: chromium missing and neither root nor sudo: the browser test will skip"; exit 0; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "note: no apt-get to install chromium: the browser test will skip"; exit 0; }; \
	  echo "installing chromium (headless browser for tests/test_html_report.py)"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    || echo "note: could not install chromium: the browser test will skip"; }

lint: $(DEV_STAMP)
	$(BIN)/ruff check initbench tests tools

# torch 2.13.0 is the CPU build on this machine's local disk; other versions download GBs.
# The eager PyTorch peer's test is skipped where torch is missing; here it runs.
bench: $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0 psutil
	$(BIN)/python -m pytest tests/test_bench.py -k torch
	$(BIN)/initbench bench

# Does the suite notice plausible one-line bugs? Not part of `make test` (tens of minutes on
# 2 cores). Mutates a temporary copy, never this clone; see tools/mutants.py.
mutants: $(DEV_STAMP)
	$(BIN)/python tools/mutants.py --csv results/mutants.csv

# The committed reference comparison (README): default initializers, 5 seeds, mnist-5k.
reference: $(RUN_STAMP)
	rm -rf results/reference.tmp
	$(BIN)/initbench compare --dataset mnist-5k --seeds 5 --out results/reference.tmp --quiet
	$(BIN)/initbench plot results/reference.tmp --out results/reference.tmp/curves.png
	$(BIN)/initbench export results/reference.tmp --format markdown --out results/reference.tmp/summary.md
	$(BIN)/initbench report results/reference.tmp --html results/reference.tmp/report.html --quiet >/dev/null
	rm -rf results/reference && mv results/reference.tmp results/reference

# The digits comparison (embedded, offline; about 1 minute on 2 cores): one of the three
# tasks of results/aggregate/.
digits: $(RUN_STAMP)
	rm -rf results/digits.tmp
	$(BIN)/initbench compare --dataset digits --seeds 5 --out results/digits.tmp --quiet
	$(BIN)/initbench export results/digits.tmp --format markdown --out results/digits.tmp/summary.md
	rm -rf results/digits && mv results/digits.tmp results/digits

# Many studies at once (README): the MLP and CNN on mnist-5k and the MLP on digits as three
# tasks. Trains results/digits/ first only when it is missing; the rest only reads runs.
aggregate: $(RUN_STAMP)
	test -f results/digits/spec.json || $(MAKE) digits
	rm -rf results/aggregate.tmp
	$(BIN)/initbench aggregate results/reference results/cnn-reference results/digits --out results/aggregate.tmp >/dev/null
	rm -rf results/aggregate && mv results/aggregate.tmp results/aggregate

# The README's learning-rate transfer evidence (issue 25): sp vs mup on mnist-5k, 2 hidden
# layers of width 64..1024, then the coordinate check. Cached cells are not reused, so the
# time is that of the whole run.
transfer: $(RUN_STAMP)
	$(BIN)/initbench transfer --dataset mnist-5k --param sp,mup --widths 64,128,256,512,1024 --lr 1e-4:1e-1:10 --seeds 5 --epochs 1 --no-cache --quiet --out results/transfer-mnist-5k
	$(BIN)/initbench coord --dataset mnist-5k --param sp,mup --widths 64,128,256,512,1024 --steps 10 --lr 0.01 --seeds 5 --quiet --out results/coord-mnist-5k

# The README's "Deep and residual" results (issue 26): resmlp at 50 blocks, the phase
# diagrams, the reference comparison in bfloat16 against the committed float32 one (trained
# first only when results/reference/ is missing). About 10 minutes on 2 cores; each step's
# time is printed; see bench/deep_residual.sh (STEPS=... runs some of them).
deep-residual: $(RUN_STAMP)
	test -f results/reference/spec.json || $(MAKE) reference
	rm -rf results/deep-residual.tmp
	DEST=results/deep-residual.tmp PYTHON=$(BIN)/python bash bench/deep_residual.sh
	rm -rf results/deep-residual && mv results/deep-residual.tmp results/deep-residual

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
