# The two commands of the README. Both set up .venv first (idempotent: a second run only checks stamps).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every install goes through constraints.txt so torch stays on 2.13.0 (the CPU build here, CUDA on GPU boxes).
PIP := $(BIN)/python -m pip install --disable-pip-version-check --quiet -c constraints.txt

.PHONY: setup test lint demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else "omniavsr needs Python 3.11 or 3.12: run make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing omniavsr and its pinned dependencies into $(VENV) (first run only)"
	$(PIP) -e '.[dev]'
	@# mediapipe's wheel declares opencv-contrib-python (a second cv2) and jax, neither used: its real
	@# dependencies are in pyproject.toml, the wheel itself goes in without them (docs/install.md).
	$(PIP) --no-deps mediapipe==0.10.21
	@touch $@

# One pytest worker per core (pytest-xdist; worksteal: an idle worker takes tests queued on a busy one), each
# worker's torch on its share of the cores (tests/conftest.py).
test: setup
	$(BIN)/python -m pytest -q -n auto --dist worksteal

# The formatter and linter configured in pyproject.toml ([tool.ruff]); `ruff format .` applies the layout.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: setup
	@bash examples/demo.sh $(BIN)

bench: setup
	$(BIN)/python benchmarks/score_speed.py
	$(BIN)/python benchmarks/score_memory.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/media_stream_memory.py
	$(BIN)/python benchmarks/prep_lips_speed.py
	$(BIN)/python benchmarks/transcribe_batching.py
	$(BIN)/omniavsr bench --model small --mode avsr
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
