# One entry point for installing, the quickstart and the tests. Everything the project needs is installed
# from here (never by hand); the install is skipped while pyproject.toml is unchanged.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

.PHONY: install quickstart test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ambs-verify needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,atari,safetygym,report]"
	# safety-gymnasium 1.0.0 pins gymnasium 0.28 and mujoco 2.3.3; we run it on the modern stack without its pins.
	$(BIN)/python -m pip install --quiet --no-deps "safety-gymnasium==1.0.0"
	# Debian's OSMesa lets MuJoCo render on CPU-only machines where EGL is missing (MUJOCO_GL=osmesa).
	@if ! ldconfig -p | grep -q libOSMesa; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null; \
	  else echo "note: libosmesa6 not installed (needs root); MuJoCo vision will use EGL"; fi; \
	fi
	# Debian's Chromium opens report.html headless in tests/test_reports_render.py (skipped where it is missing).
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not installed (needs root: apt-get install chromium); the report browser test will skip"; fi; \
	fi
	touch $(STAMP)

# The main job: train AMBS (debug size) on the built-in grid into runs/quickstart (resumed if it exists), certify
# its checkpoints (model level, real episodes, model-error audit), verify the newest certificate, write the report.
quickstart: install
	$(BIN)/ambs-verify train --configs quickstart
	$(BIN)/ambs-verify certify runs/quickstart --checkpoints all --states 32 --samples 256 --episodes 16 --audit-states 8 --rollouts 64
	$(BIN)/ambs-verify report runs/quickstart
	$(BIN)/ambs-verify bounds samples --eps 0.09 --delta 0.01 --theorem 2 --horizon 30

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
