# Every target sets up what it needs: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench crds lock clean

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The offline path for now: what the webhook would do to the example workloads, and why.
demo: $(STAMP)
	@echo "== libinject explain: which policy wins for each pod, and why the others do not"
	$(BIN)/libinject explain -f examples/workloads --policies examples/policies
	@echo
	@echo "== libinject inject: the shop Deployment as the cluster would run it"
	$(BIN)/libinject inject -f examples/workloads/shop.yaml --policies examples/policies

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench examples
	$(BIN)/ruff format --check operator tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.engine

# Regenerates the CRD from the Python model (the one source of truth for the schema).
crds: $(STAMP)
	$(BIN)/libinject crd > crds/instrumentationpolicies.libinject.dev.yaml

lock:
	$(PYTHON) -m venv /tmp/libinject-lock && /tmp/libinject-lock/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Pinned by 'make lock' from requirements-dev.in; do not edit by hand."; \
	  /tmp/libinject-lock/bin/pip freeze; } > requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
