# The two commands of the README, and the few that help them. Every target makes its own virtual
# environment inside the checkout (.venv) from the registries, so a fresh machine with Python 3.11 needs
# nothing else.  `make run` installs what runs the service (and Flower, honcho: the `local` extra);
# `make test` adds the test packages to the same venv (du -sh .venv: 106 MB after `make run`, 248 MB
# after `make test`; it was 248 MB for `make run` too).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP  := $(VENV)/.installed

.PHONY: run test php chromium bench chaos lint clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## make run: the service's main job on its embedded defaults.
run: $(RUN_STAMP)
	$(BIN)/wms-relay demo

## make test: the whole test suite (the PHP differential tests run where php-cli is installed, `make php` installs it;
## the desk's browser tests where Debian's chromium is, `make chromium` installs it), in TEST_WORKERS parallel
## pytest-xdist processes, a test file at a time per process (its module fixtures start once), the files in
## their collected order (the long integration files first, so that none is left running alone at the end);
## TEST_WORKERS=0 runs it in one process.  Most integration tests wait on real processes, so two processes
## keep 2 cores busy where one left them half idle (docs/testing.md).
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: $(STAMP)
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,$(XDIST)) $(PYTEST_ARGS)

## make php: Debian's php-cli, the reference the signing tests compare against (needs root or sudo).
php:
	@command -v php >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq php-cli >/dev/null; }
	@php --version | head -1

## make chromium: Debian's headless chromium and its chromedriver, for the desk's browser tests (needs root or sudo).
chromium:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@chromium --version | head -1

## make bench: signing speed, pipeline throughput through the real processes, the ingest door, the desk's
## page times with 100,000 dead letters, the health probes' CPU, then the store at scale (1M settled
## deliveries, 100k letters, an outage replay of 10,000 counts: --counts 100000 for the issue's full replay)
## (~30 min; docs/benchmarks.md).
bench: $(STAMP)
	$(BIN)/python benchmarks/signing.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/desk_pages.py
	$(BIN)/python benchmarks/probes.py
	$(BIN)/python benchmarks/scale.py --counts 10000 --rate 50

## make chaos: 2,000 events through faults, SIGKILLed workers and a store restart (~1-2 min; exits 1 on a violation).
chaos: $(STAMP)
	$(BIN)/python benchmarks/chaos.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet flake8
	$(BIN)/python -m flake8 signing worker tasks tests benchmarks
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
