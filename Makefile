# One entry point for set-up, checks and tests. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests start servers from.
DEBIAN_PACKAGES := redis-server postgresql

.PHONY: run test check lint format typecheck pytest system-deps install bench clean

## run: schedule an example notebook every 10 s with a worker, and show the runs landing
run: $(STAMP)
	JUPYTER_SCHED_DATA_DIR=$(CURDIR)/.sched-demo $(BIN)/jupyter-sched demo --every 10

## test: install everything the tests need, then lint, type-check and run the whole suite
test: system-deps $(STAMP) check

## check: lint, type-check and run the tests (assumes the set-up is done)
check: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy jupyter_sched

pytest: $(STAMP)
	$(BIN)/pytest

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## bench: the run-latency benchmark against raw papermill
bench: $(STAMP)
	$(BIN)/python bench/run_latency.py

clean:
	rm -rf $(VENV) .sched-demo dist build
