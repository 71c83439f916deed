# The two commands the README promises: `make demo` and `make test`.
# Both set everything up from nothing but Python, Node and Debian's package tools.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hawknb-installed
JS_STAMP := js/node_modules/.hawknb-installed
# torch's CPU build lies on this machine's disk for exactly this version; any other
# resolution pulls a multi-GB CUDA build
TORCH := torch==2.13.0

.PHONY: setup js demo test lint browser java bundle-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]' $(TORCH)
	touch $(STAMP)

$(JS_STAMP): js/package.json js/package-lock.json
	# `npm ci` refuses this lock file: npm 11 records only this platform's optional packages
	# (rollup's per-OS binaries), so install from the lock without rewriting it
	cd js && npm install --no-audit --no-fund --no-save
	touch $(JS_STAMP)

setup: $(STAMP) $(JS_STAMP)

# rebuild the widget bundles into hawknb/static (committed, so `pip install` needs no Node)
js: $(JS_STAMP)
	cd js && npm run build

demo: setup js
	$(BIN)/hawknb demo $(DEMO_ARGS)

# Debian's Chromium for the real-browser tests (never a downloaded browser)
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's Java runtime for the Spark tests (pyspark runs Spark in local mode on it)
java:
	@command -v java >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the committed bundle must be what a rebuild of js/ gives
bundle-check: js
	git diff --exit-code --stat -- hawknb/static

test: setup browser java lint bundle-check
	cd js && npm test --silent
	$(BIN)/python -m pytest -q --durations=30
