# img2loc: the two quick-start commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
OUT ?= build

.PHONY: setup setup-dev setup-download run cells test lint clean bench train-default web serve bench-web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs are editable (src/ edits need no reinstall): pip runs again only when
# pyproject.toml changes, so `make run` on a set-up checkout starts at once.
setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The dev install includes the base one.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,train]"
	touch $(VENV)/.installed $@

# The main job: the bundled default model guesses the bundled example photos (CC BY-SA 4.0)
# and prints each guess beside the true location. No torch, no download, no training.
run: setup
	$(BIN)/img2loc demo

# Build and draw the adaptive S2 cells of the shared Street View photos.
cells: setup
	$(BIN)/img2loc cells build $(DATA)/streetview-world/locations.csv \
		$(DATA)/streetview-us-west/locations.csv $(DATA)/streetview-croatia/locations.csv \
		--min-samples 10 --max-samples 60 -o $(OUT)/cells.json
	$(BIN)/img2loc cells show $(OUT)/cells.json -o $(OUT)/cells.png

# img2dataset pins pandas<3 and an old webdataset: it gets its own environment.
setup-download: .venv-img2dataset/bin/img2dataset
.venv-img2dataset/bin/img2dataset:
	$(PYTHON) -m venv .venv-img2dataset
	.venv-img2dataset/bin/pip install --quiet img2dataset==1.47.0

lint: setup-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

test: lint setup-download
	$(BIN)/python -m pytest -q

# Reproduce the bundled default model on a CPU (about 40 minutes): see docs/default-model.md.
train-default: setup-dev
	DATA=$(DATA) OUT=$(OUT)/default BIN=$(BIN) bash scripts/train_default.sh

bench: setup
	$(BIN)/python benchmarks/bench_cells.py

# Rebuild the web app into src/img2loc/server/static (committed: installs and CI need no npm).
web:
	cd web && npm ci --no-audit --no-fund && npm run build

serve: setup
	$(BIN)/img2loc serve $(if $(MODEL),--model $(MODEL))

bench-web: setup-dev
	$(BIN)/python benchmarks/bench_web.py $(if $(MODEL),--model $(MODEL))

clean:
	rm -rf $(VENV) .venv-img2dataset $(OUT) .pytest_cache .mypy_cache .ruff_cache
