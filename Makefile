# One entry point for installing, the quickstart and the tests. Everything the project needs is installed from
# here (never by hand), at the exact versions of requirements/lock.txt, which the test suite passed with; the
# install is redone from a brand-new .venv whenever pyproject.toml, a lock file or this Makefile changes, or
# another Python is asked for (make PYTHON=python3.13 …).
PYTHON ?= python3.11
# The interpreter itself. A pyenv shim (python3.13) runs only while that version is active; then pyenv's newest
# installed 3.13.x is used directly.
PYEXE  := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || \
            { v=$$(pyenv versions --bare 2>/dev/null | grep -E '^$(subst .,\.,$(patsubst python%,%,$(notdir $(PYTHON))))\.[0-9]+$$' \
               | sort -V | tail -n 1) && [ -n "$$v" ] && echo "$$(pyenv root)/versions/$$v/bin/python"; })
ifeq ($(PYEXE)$(origin PYTHON),file)  # no python3.11 and none asked for: the default python3, if it is supported
PYEXE  := $(shell python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
endif
PYVER  := $(if $(PYEXE),$(shell $(PYEXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
# Every extra of pyproject.toml (the lock holds them all).
EXTRAS := dev,atari,safetygym,report,ray
LOCKS  := requirements/lock.txt requirements/tools.txt requirements/no-deps.txt
STAMP  := $(VENV)/.install-stamp-$(PYVER)
# make lock UPGRADE=1 moves every pin to the newest release pyproject.toml allows; plain make lock keeps the
# current pins wherever they still satisfy it.
COMPILE = $(abspath $(UV)) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
          --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

.PHONY: install lock quickstart smoke test test-learning lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCKS) Makefile
	@test -n "$(PYVER)" || { echo "cannot run $(PYTHON); pass an installed Python 3.11-3.13: make PYTHON=python3.12 …" >&2; exit 1; }
	@$(PYEXE) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 13) else "ambs-verify supports Python 3.11, 3.12 and 3.13, not %d.%d (make PYTHON=python3.11 …)" % v)'
	rm -rf $(VENV)
	$(PYEXE) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/tools.txt
	# Every package at its locked version and hash; the lock's setuptools builds the editable install.
	$(UV) pip install --quiet --python $(BIN)/python -c requirements/lock.txt --build-constraints requirements/lock.txt \
	  -e ".[$(EXTRAS)]" -r requirements/build.in
	# safety-gymnasium 1.0.0 pins gymnasium 0.28 and mujoco 2.3.3; we run it on the modern stack without its pins.
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --require-hashes -r requirements/no-deps.txt
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

# Regenerates the locks on purpose, for Python 3.11-3.13 on every platform (one universal file; a package whose
# newest release differs by Python, such as jax, gets one pin per Python marker). Then: make test.
lock:
	@test -x $(UV) || { $(PYEXE) -m venv $(VENV) && $(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/tools.txt; }
	cd requirements && $(COMPILE) ../pyproject.toml build.in --all-extras -o lock.txt
	cd requirements && $(COMPILE) tools.in -o tools.txt
	cd requirements && $(COMPILE) --no-deps no-deps.in -o no-deps.txt

# The main job: train AMBS (with the grid_ambs block: PENL 0.1, actor-critic lr 1e-4) and unshielded DreamerV3 on
# the built-in grid with the same seed (configs.yaml quickstart) into runs/quickstart/{ambs,dreamer} (resumed if
# they exist), certify both newest checkpoints (the deployed agent, real episodes, the model-error audit, the model
# level), verify the AMBS certificate by recomputing it, write one side-by-side page, runs/quickstart/comparison.html,
# and print the AMBS sample size for eps 0.09, delta 0.01. DreamerV3 trains and is certified in the background
# (its output goes to runs/quickstart/dreamer.log) while AMBS does in the foreground: the two processes share the
# 2 cores better than one process uses them.
# 384 real rollouts per audited state: a state passes H=30,p<=0.1 with up to 19 violating rollouts (about 5 %), so an
# agent whose worst state violates 2-3 % of the time passes with high probability (auto, 103, allows 1).
QS_CERTIFY := --states 32 --samples 256 --episodes 16 --audit-states 8 --rollouts 384
# Stops the background DreamerV3 job, its ambs-verify child included (a background job ignores Ctrl-C).
QS_STOP := { pkill -P $$dreamer; kill $$dreamer; } 2>/dev/null
quickstart: install
	@mkdir -p runs/quickstart
	@echo "DreamerV3: training and certifying in the background, output in runs/quickstart/dreamer.log"
	@{ $(BIN)/ambs-verify train --configs quickstart --agent dreamer --logdir runs/quickstart/dreamer --run.progress False \
	   && $(BIN)/ambs-verify certify runs/quickstart/dreamer $(QS_CERTIFY) --no-progress; } \
	   > runs/quickstart/dreamer.log 2>&1 & dreamer=$$!; trap '$(QS_STOP)' INT TERM; \
	set -x; $(BIN)/ambs-verify train --configs quickstart grid_ambs --agent ambs --logdir runs/quickstart/ambs \
	  && $(BIN)/ambs-verify certify runs/quickstart/ambs $(QS_CERTIFY) \
	  && $(BIN)/ambs-verify verify runs/quickstart/ambs; ambs=$$?; { set +x; } 2>/dev/null; \
	test $$ambs -eq 0 || $(QS_STOP); \
	wait $$dreamer; status=$$?; echo "DreamerV3 (runs/quickstart/dreamer.log):"; tail -n 3 runs/quickstart/dreamer.log; \
	test $$ambs -eq 0 -a $$status -eq 0
	$(BIN)/ambs-verify report runs/quickstart/ambs runs/quickstart/dreamer --out runs/quickstart
	$(BIN)/ambs-verify bounds samples --eps 0.09 --delta 0.01 --theorem 2 --horizon 30

# What CI runs on a second Python: the main job's shape in a few hundred steps, with a relative logdir, from a
# brand-new temporary working directory (paths must not depend on where the command runs).
smoke: install
	set -e; av=$(abspath $(BIN))/ambs-verify; cd "$$(mktemp -d)"; trap 'rm -rf "$$PWD"' EXIT; \
	$$av train --configs quickstart --run.steps 300 --run.save_every 300 --run.train_fill 100 --shield_samples 32 \
	  --logdir runs/smoke --run.progress False; \
	$$av certify runs/smoke --states 4 --samples 32 --episodes 2 --audit-states 2 --rollouts 8 --no-progress; \
	$$av verify runs/smoke/certificates/300.json; \
	$$av report runs/smoke > /dev/null; test -s runs/smoke/report.html; \
	echo "smoke passed on Python $(PYVER)"

test: install
	$(BIN)/python -m pytest -q

# The learning tests: seeded DreamerV3 and AMBS runs on the grid at a fixed budget, judged against the exact
# random-policy yardsticks, and each paper block on real data; and the README's Python API example end to end
# (minutes each; CI runs them after the suite).
test-learning: install
	$(BIN)/python -m pytest -q -m "learning or end_to_end" -rfEP  # -rP: show the measured figures of passing tests too

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .venv-second .pytest_cache .ruff_cache .hypothesis
