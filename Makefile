# Two commands on a fresh machine:
#   make run    install into .venv and run the lab's main job on the embedded default market
#   make test   install into .venv (with dev tools) and run ruff, mypy and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.alphaloop-home

.PHONY: run test install install-dev lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned to the CPU build, so stable-baselines3 does not pull CUDA wheels.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed

# The main job: evolve the gene pool, then run today's arena (the data's last trading day).
run: install
	$(BIN)/alphaloop --home "$(HOME_DIR)" data check synthetic
	$(BIN)/alphaloop --home "$(HOME_DIR)" evolve --data synthetic --generations 5 \
		--population 32 --seed 7 --workers 2
	$(BIN)/alphaloop --home "$(HOME_DIR)" arena run --data synthetic
	$(BIN)/alphaloop --home "$(HOME_DIR)" ledger verify

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/backtest_throughput.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .alphaloop-home
