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
# Written only after `jlpm install --immutable` succeeded: yarn's own state file cannot
# tell, because any `jlpm install` writes it.
NODE_STAMP := node_modules/.sched-lockfile-checked
LABEXTENSIONS := $(VENV)/share/jupyter/labextensions
# What git sees in the tree (tracked changes and files it does not ignore), before and
# after `make test`: the tests must not change it.
TREE_STATUS := { git status --porcelain --untracked-files=all 2>/dev/null || true; }
TREE_BEFORE := build/tree-before-test
# More arguments for `jupyter lab` in `make run` (e.g. LAB_ARGS=--no-browser).
LAB_ARGS ?=

.PHONY: run demo test check lint format typecheck pytest labtest docs screenshots dist \
	system-deps install labextension bench bench-reference bench-ticker clean

## run: JupyterLab on notebooks/ with the scheduler on its embedded default; the CLI
## (.venv/bin/jupyter sched ...) sees the same scheduler. Port: $JUPYTER_PORT (8888).
run: $(STAMP) labextension
	@echo "jupyter-sched: the CLI sees this scheduler: $(BIN)/jupyter sched jobs list"
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR)/notebooks $(if $(SUDO),,--allow-root) $(LAB_ARGS)

## demo: schedule an example notebook every 10 s with a worker, and show the runs landing
demo: $(STAMP)
	JUPYTER_SCHED_DATA_DIR=$(CURDIR)/.sched-demo $(BIN)/jupyter-sched demo --every 10

## test: install everything the tests need, run every check and test, and check that the
## tests left the tree as they found it
test:
	@mkdir -p $(dir $(TREE_BEFORE)) && $(TREE_STATUS) > $(TREE_BEFORE)
	$(MAKE) system-deps install check
	@$(TREE_STATUS) | diff -u $(TREE_BEFORE) - || { \
	  echo "make test changed the files above (commit them, or have git ignore them)"; exit 1; }

## check: lint, type-check, build the docs and run every test (assumes the set-up is done)
check: lint typecheck docs pytest labtest

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

# The hub tests open the Lab panel in a browser: the panel is built first.
pytest: $(STAMP) labextension
	$(BIN)/pytest

## docs: the documentation site in docs/_build/html (warnings are errors)
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

## labtest: unit tests of the panel's TypeScript, the browser story, the outputs browser
## test (thumbnails, compare, PDF), the reports browser test (sweeps, batches, backfill),
## and the release: sdist and wheel from `python -m build`, the wheel in a new virtualenv
## without Node.js, then the Binder set-up in another new virtualenv
labtest: labextension
	$(JLPM) test
	$(JLPM) test:ui
	$(JLPM) test:ui:outputs
	$(JLPM) test:ui:reports
	$(JLPM) test:release

## screenshots: copy the browser tests' screenshots (ui-tests/screenshots/) to docs/
screenshots:
	@ls ui-tests/screenshots/*.png >/dev/null 2>&1 || { \
	  echo "no screenshots yet: run make labtest first"; exit 1; }
	cp ui-tests/screenshots/*.png docs/screenshots/

## dist: the release artifacts (sdist and wheel) in dist/, checked by twine
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

install: $(STAMP) $(NODE_STAMP)

# The editable install skips the Lab panel's build hook (SKIP_JUPYTER_BUILDER): the panel
# is built below, from node_modules installed with the lockfile check. The link to the
# build goes first: pip would write (and remove) the package's files through it.
$(STAMP): pyproject.toml package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if [ -L $(LABEXTENSIONS)/jupyter-sched ]; then rm $(LABEXTENSIONS)/jupyter-sched; fi
	SKIP_JUPYTER_BUILDER=1 $(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json yarn.lock | $(STAMP)
	$(JLPM) install --immutable
	touch $@

## labextension: build the Lab panel from source and point the virtualenv at the build
labextension: $(NODE_STAMP)
	rm -rf jupyter_sched/labextension
	$(JLPM) build
	rm -rf $(LABEXTENSIONS)/jupyter-sched
	mkdir -p $(LABEXTENSIONS)
	ln -s $(CURDIR)/jupyter_sched/labextension $(LABEXTENSIONS)/jupyter-sched

## bench: the run-latency and 60-run sweep benchmarks against raw papermill
bench: $(STAMP)
	$(BIN)/python bench/run_latency.py
	$(BIN)/python bench/sweep.py

## bench-ticker: the ticker at scale (a rush of 10,000 fires over 100,000 jobs and
## 1,000,000 runs, idle ticks, catch-up, fire lateness to queued and, on an idle worker,
## to running) on SQLite, then PostgreSQL + Redis
bench-ticker: $(STAMP)
	cd bench && ../$(BIN)/python ticker_scale.py --db sqlite --worker
	cd bench && ../$(BIN)/python ticker_scale.py --db postgres --lateness-seconds 0

## bench-reference: run latency against the official jupyter-scheduler (own venv in bench/)
bench-reference: $(STAMP)
	$(BIN)/python bench/vs_jupyter_scheduler.py

clean:
	rm -rf $(VENV) .sched-demo dist build node_modules lib jupyter_sched/labextension \
	  docs/_build ui-tests/screenshots
