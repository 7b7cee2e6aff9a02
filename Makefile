# sweeplab: `make run` and `make test` set up everything on a fresh machine (venv, packages, data).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON := $(VENV)/bin/python
# Every package at the version in constraints.txt (CI installs exactly what a developer has);
# pyproject keeps honest ranges for users elsewhere.
PIP_INSTALL := $(VENV)/bin/pip install --quiet -c constraints.txt
FASHION_MNIST := /usr/share/datasets/fashion-mnist
# Debian packages the tests use: a real PostgreSQL server and a real headless browser.
TEST_PACKAGES := postgresql chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# apt_install(packages, what to say without apt-get): install the missing Debian packages.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "no apt-get here: $(2)"; exit 0; fi; \
	echo "installing $$missing (Debian packages)"; \
	$(SUDO) apt-get update -qq && \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null
endef

.PHONY: help setup data test-deps run test test-fast lint bench bench-pruning bench-sweep bench-scale clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## create .venv: sweeplab (editable) with trackers, test and lint tools, pinned

# torch first: its wheels lie on this machine's disk, and pip resolves the rest against the installed build.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(PIP_INSTALL) torch torchvision
	$(PIP_INSTALL) -e '.[dev,dashboard]'
	touch $@

data: ## make FashionMNIST available offline (Debian's dataset-fashion-mnist)
	$(call apt_install,dataset-fashion-mnist,torchvision downloads FashionMNIST on the first run)

test-deps: ## the Debian packages the tests use (PostgreSQL, Chromium)
	$(call apt_install,$(TEST_PACKAGES),install PostgreSQL and Chromium yourself for those tests)

run: setup data ## one training run with the default config
	$(PYTHON) train.py

# The suite runs on every core (pytest-xdist), one torch thread per test process: two processes of
# two OpenMP threads each on two cores slow torch down many times over (threads spin-wait for cores).
PYTEST := OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n auto

test: setup data test-deps ## the whole test suite, on every core
	$(PYTEST)

test-fast: setup data ## the tests not marked slow
	$(PYTEST) -m "not slow"

lint: setup ## ruff (rules and line length in pyproject.toml)
	$(VENV)/bin/ruff check .

bench: setup data ## trainer speed against the seed loop and the compute floor (~1 min)
	$(PYTHON) benchmarks/trainer_speed.py

bench-pruning: setup data ## the same Optuna study with and without pruners (~10 min)
	$(PYTHON) benchmarks/pruning.py

bench-sweep: setup data ## a 9-job grid: seed loop, basic, pool and fused launchers (~3 min)
	$(PYTHON) benchmarks/sweep_speed.py

bench-scale: setup ## a job's cost beside its training, N = 20, 100, 1000 tiny jobs (BIG=1 adds 5000)
	$(PYTHON) benchmarks/sweep_scale.py $(if $(BIG),--big)

clean: ## delete generated run and sweep dirs under outputs/
	rm -rf outputs/runs outputs/sweeps outputs/multirun

# The seed notes' grid studies (sweeps/*.yaml), fused, 5 seeds per config; then 20 seeds for the configs
# of the claims that 5 left undecided (added to the same sweep dirs: extend=true); then docs/studies.md and each
# study's report (docs/studies/<name>/). The per-trial plots and report.html are not committed.
STUDY := $(PYTHON) train.py -m hydra/launcher=fused
.PHONY: studies
studies: setup data ## rerun the seed notes' studies and regenerate docs/studies.md and docs/studies/
	for study in neurons depth activation lr batch_size optimizer; do $(STUDY) +sweep=$$study || exit 1; done
	$(STUDY) +sweep=lr optimizer=adam
	$(STUDY) +sweep=neurons model.width=64,128 activation=sigmoid 'seed=range(0,20)' hydra.sweeper.extend=true
	$(STUDY) +sweep=depth model.depth=1,2,3 activation=relu 'seed=range(0,20)' hydra.sweeper.extend=true
	$(STUDY) +sweep=batch_size batch_size=32,64,128 'seed=range(0,20)' hydra.sweeper.extend=true
	$(STUDY) +sweep=optimizer optimizer=adam,adamw lr=0.001 'seed=range(0,20)' hydra.sweeper.extend=true
	$(VENV)/bin/sweeplab studies
