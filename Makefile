# One entry point for set-up, checks and tests. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests start servers and browsers from; the hub tests (tests/hub) build
# the environment users' servers run from with Debian's python3 (the virtualenv's is not
# executable by other users) and install configurable-http-proxy with npm (Node.js 20).
DEBIAN_PACKAGES := redis-server postgresql chromium python3
# jlpm and jupyter-builder come with JupyterLab in the virtualenv.
JLPM := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jlpm
NODE_STAMP := node_modules/.yarn-state.yml
LABEXTENSIONS := $(VENV)/share/jupyter/labextensions

.PHONY: run demo test check lint format typecheck pytest labtest system-deps install \
	labextension bench bench-reference clean

## run: JupyterLab on notebooks/ with the scheduler working (embedded worker, REST API, panel)
run: $(STAMP) labextension
	JUPYTER_SCHED_DATA_DIR=$(CURDIR)/.sched-demo $(BIN)/jupyter lab \
	  --ServerApp.root_dir=$(CURDIR)/notebooks $(if $(SUDO),,--allow-root)

## demo: schedule an example notebook every 10 s with a worker, and show the runs landing
demo: $(STAMP)
	JUPYTER_SCHED_DATA_DIR=$(CURDIR)/.sched-demo $(BIN)/jupyter-sched demo --every 10

## test: install everything the tests need, then lint, type-check and run the whole suite
test: system-deps $(STAMP) check

## check: lint, type-check and run every test (assumes the set-up is done)
check: lint typecheck pytest labtest

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(JLPM) lint
	$(JLPM) api:check

format: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(JLPM) format

typecheck: $(STAMP)
	$(BIN)/mypy jupyter_sched

pytest: $(STAMP)
	$(BIN)/pytest

## labtest: unit tests of the panel's TypeScript, the browser story, the wheel in a new venv
labtest: labextension
	$(JLPM) test
	@# The browser story is timing-sensitive on a loaded machine (a run can finish between
	@# two panel refreshes); one retry of the whole story, reported, before failing.
	$(JLPM) test:ui || { echo "browser story failed; running it once more"; $(JLPM) test:ui; }
	$(JLPM) test:wheel

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

$(NODE_STAMP): package.json yarn.lock | $(STAMP)
	$(JLPM) install --immutable
	touch $@

## labextension: build the Lab panel from source and point the virtualenv at the build
labextension: $(NODE_STAMP)
	$(JLPM) build
	rm -rf $(LABEXTENSIONS)/jupyter-sched
	mkdir -p $(LABEXTENSIONS)
	ln -s $(CURDIR)/jupyter_sched/labextension $(LABEXTENSIONS)/jupyter-sched

## bench: the run-latency benchmark against raw papermill
bench: $(STAMP)
	$(BIN)/python bench/run_latency.py

## bench-reference: run latency against the official jupyter-scheduler (own venv in bench/)
bench-reference: $(STAMP)
	$(BIN)/python bench/vs_jupyter_scheduler.py

clean:
	rm -rf $(VENV) .sched-demo dist build node_modules lib jupyter_sched/labextension
