# PDV: `make dev` runs a local stack, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
TS_DIR := clients/typescript
TS_STAMP := $(TS_DIR)/node_modules/.installed
# The access-report test opens the resident's letter in headless Chromium (Debian's `chromium`).
CHROMIUM_STAMP := $(VENV)/.chromium

.PHONY: dev test lint proto bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("PDV needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e clients/python -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# The TypeScript client's own packages (grpc-js, ts-proto, tsc), from its lock file.
$(TS_STAMP): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(TS_STAMP)

dev: $(STAMP)
	$(BIN)/pdv dev

# Installed once, only when missing; apt-get needs root (or sudo).
$(CHROMIUM_STAMP): $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium; }
	touch $(CHROMIUM_STAMP)

lint: $(STAMP) $(NODE_STAMP)
	node_modules/.bin/buf lint
	$(BIN)/lint-imports

# Two parts: everything not marked `serial` on two pytest-xdist workers (a test module stays on
# one worker, so its module-scoped stacks are built once), then the `serial` tests (elapsed-time
# bounds, short timeouts) alone. Both parts always run; either one failing fails `make test`.
PYTEST_WORKERS ?= 2
test: lint $(TS_STAMP) $(CHROMIUM_STAMP)
	@status=0; \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope -m 'not serial' $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || status=$$?; \
	exit $$status

proto: $(STAMP) $(NODE_STAMP) $(TS_STAMP)
	$(BIN)/python scripts/gen_clients.py

bench: $(STAMP)
	$(BIN)/pdv bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache $(TS_DIR)/node_modules $(TS_DIR)/dist
