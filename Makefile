# oakid-gate: the two commands a new machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install install-demo peers lint typecheck unit bench clean

# Two stamps in one virtualenv: the demo needs the package and its runtime
# dependencies only; the tests add their tools (pytest, Playwright, mypy, Django, ...).
DEMO_STAMP := $(VENV)/.installed-demo

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $(DEMO_STAMP)

install: $(STAMP)
install-demo: $(DEMO_STAMP)

## make demo: the dev-idp and a protected example app on 127.0.0.1 (runtime dependencies only)
demo: $(DEMO_STAMP)
	$(VENV)/bin/oakid-gate demo

## make peers: the independently written test peers (oidc-provider, redis, chromium, nginx)
peers:
	bash scripts/install-peers.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check oakid_gate tests benchmarks examples
	$(VENV)/bin/ruff format --check oakid_gate
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## make test: installs everything the tests need, then runs lint, mypy and the whole suite
test: $(STAMP) peers bench-peers lint typecheck
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest -m "not e2e"

## make bench: every mode against what users run instead, with wrk (benchmarks/README.md),
## then the middleware rows in pairs, the figures they are judged by on a noisy host
.PHONY: bench-quick bench-peers bench-hot-path bench-instructions bench-paired
bench: $(STAMP) bench-peers
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/paired.py

## make bench-quick: the same, 1 round x 2 s per variant, for development
bench-quick: $(STAMP) bench-peers
	$(PY) benchmarks/bench.py --quick

bench-peers:
	bash scripts/install-peers.sh
	bash scripts/install-bench.sh

bench-hot-path: $(STAMP)
	$(PY) benchmarks/hot_path.py

## make bench-paired: the middleware rows with each variant and the bare app loaded at
## once on the server core (a cross-check that the host's noise cannot move)
bench-paired: $(STAMP) bench-peers
	$(PY) benchmarks/paired.py

## make bench-instructions: the hot path's instructions per request inside uvicorn
## (callgrind: no noise; benchmarks/README.md)
bench-instructions: $(STAMP) bench-peers
	$(PY) benchmarks/instructions.py

clean:
	rm -rf $(VENV) tests/peers/node/node_modules
