# The two commands: `make run` (set up, push the demo model, serve it) and `make test` (set up, run every check).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint typecheck unit clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: this takes the CPU build; left to the resolver it may pull GBs of CUDA
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python examples/demo.py
	$(BIN)/liveml init
	$(BIN)/liveml serve

lint: setup
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: setup
	$(BIN)/mypy

test: setup lint typecheck
	bash scripts/services.sh
	bash scripts/install_chromium.sh
	bash scripts/install_image_tools.sh
	$(BIN)/python -m pytest -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) .liveml demo .pytest_cache .mypy_cache .ruff_cache
