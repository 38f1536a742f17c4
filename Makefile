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

# The main job: a short season on the embedded synthetic market with a planted breakout edge
# that stops paying on 2025-06-27: the gene pool evolves, gate candidates trade on probation,
# the loop promotes (or demotes) them on their paper record, then the ledger is verified.
SEASON_DATA ?= synthetic:seed=4,assets=12,drift=0,edge=breakout,edge_strength=4,edge_until=2025-06-27
SEASON_CONFIG ?= alphaloop/configs/season_demo.yaml
run: install
	$(BIN)/alphaloop --home "$(HOME_DIR)" data check "$(SEASON_DATA)"
	$(BIN)/alphaloop --home "$(HOME_DIR)" evolve --data "$(SEASON_DATA)" --as-of 2025-05-30 \
		--generations 5 --seed 7 --workers 2 --config $(SEASON_CONFIG)
	$(BIN)/alphaloop --home "$(HOME_DIR)" arena replay --data "$(SEASON_DATA)" \
		--start 2025-06-02 --end 2025-07-25 --config $(SEASON_CONFIG)
	$(BIN)/alphaloop --home "$(HOME_DIR)" ledger verify

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/backtest_throughput.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .alphaloop-home
