# Every target sets up what it needs: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Test-side Python (the control-plane harness) lives in tests/; the demo uses it too.
RUN := PYTHONPATH=tests $(BIN)/python

.PHONY: demo test testbin cluster-up cluster-down lint bench crds launcher image lock lock-java lock-nodejs clean

# Two environments: .venv for tests, lint and tools, and .venv-runtime with the runtime lock alone
# (what the operator image installs), from which the tests and benchmarks run the operator and the
# CSI plugin (tests/cluster/runtime.py). Both install the package from this checkout.
RUNTIME_VENV := .venv-runtime

$(STAMP): requirements-dev.lock requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m libinject.csi.codegen  # the CSI stubs (from the spec's Go module; not in git)
	$(PYTHON) -m venv --clear $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install --quiet -r requirements.lock
	$(RUNTIME_VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The live path: a local control plane (kept running afterwards; `make cluster-down` stops it),
# libinject's CRD and RBAC, the example policies, and the example workloads injected and
# validated by the API server.
demo: $(STAMP)
	$(RUN) examples/demo.py

# Builds etcd, the Kubernetes control plane, kubectl and kwok from the Go module proxy (progress
# on the terminal; cached by version in ~/.cache/libinject/testbin, so a second run is instant).
testbin: $(STAMP)
	$(RUN) -m cluster.build

# A control plane started by hand for debugging: prints its admin kubeconfig's path.
cluster-up: $(STAMP)
	$(RUN) -m cluster up

cluster-down: $(STAMP)
	$(RUN) -m cluster down

test: testbin
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench examples
	$(BIN)/ruff format --check operator tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# Engine latency in memory, the webhook on a local control plane beside the OpenTelemetry Operator
# (built from the Go module proxy on first use) and a floor webhook, Python, Java and Node.js
# start-up with the injected library, the Python, Java and Node.js images' sizes, the three
# delivery modes (copy, CSI, image volume) for 50 pods on one node, both operators' memory with
# 10,000 namespaces, 1,000 policies and 2,000 pods, and the operator image's size per platform
# and its start to /readyz (results in bench/results/).
bench: testbin
	$(RUN) -m bench.engine
	$(RUN) -m bench.webhook
	$(RUN) -m bench.python_startup
	$(RUN) -m bench.java_startup
	$(RUN) -m bench.nodejs_startup
	$(RUN) -m bench.bundle_size
	$(RUN) -m bench.delivery
	$(RUN) -m bench.scale
	$(RUN) -m bench.operator_image

# Regenerates the CRD from the Python model (the one source of truth for the schema).
crds: $(STAMP)
	$(BIN)/libinject crd > crds/instrumentationpolicies.libinject.dev.yaml
	cp crds/instrumentationpolicies.libinject.dev.yaml charts/libinject/crds/  # Helm installs its own copy

# The operator image, without a Docker engine (tests/cluster/operatorimage.py): Debian bookworm's
# Python, the locked wheels and this checkout, one OCI index for linux/amd64 and linux/arm64,
# pushed to IMAGE (a registry that must be running; by default where the Deployment points).
# The same checkout gives the same digests; it prints them. Needs PYTHON 3.11 (the image's).
IMAGE ?= localhost:5000/libinject/operator:0.1.0
image: $(STAMP)
	$(RUN) -m cluster.operatorimage $(IMAGE)

# Rebuilds the Java launcher jar, committed as package data, from its sources with the default
# JDK's javac (tests/java/test_launcher_jar.py checks that the committed bytes are what it builds).
launcher: $(STAMP)
	$(BIN)/python -m libinject.bundle.java.launcher

# Two locks, each from a fresh venv: requirements-dev.lock (tests, lint; what .venv installs) and
# requirements.lock (the runtime alone; what the operator image installs). The runtime lock is
# resolved under the dev lock's pins, so the image runs exactly the versions the tests ran.
lock:
	$(PYTHON) -m venv --clear /tmp/libinject-lock && /tmp/libinject-lock/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Pinned by 'make lock' from requirements-dev.in; do not edit by hand."; \
	  /tmp/libinject-lock/bin/pip freeze; } > requirements-dev.lock
	$(PYTHON) -m venv --clear /tmp/libinject-lock-runtime && /tmp/libinject-lock-runtime/bin/pip install --quiet -r requirements.in -c requirements-dev.lock
	{ echo "# Pinned by 'make lock' from requirements.in; do not edit by hand."; \
	  /tmp/libinject-lock-runtime/bin/pip freeze; } > requirements.lock

# The Java agents' locks (images/java/locks/), one per line of images/java/versions: each jar is
# checked against the checksums Maven Central publishes for it. A lock already there is kept
# when the bytes are the same and refused (left as it is) when they differ.
lock-java: $(STAMP)
	grep -Ev '^(#|$$)' images/java/versions | while read -r flavor version; do \
	  $(BIN)/libinject lock java --flavor "$$flavor" --version "$$version" --locks images/java/locks || exit 1; \
	done

# The Node.js flavors' locks (images/nodejs/locks/<flavor>-<version>/: package.json and npm's
# package-lock.json with every package's integrity hash), one per line of images/nodejs/versions,
# resolved by npm against the npm registry. A lock already there is resolved again from itself:
# kept when npm changes nothing, refused (left as it is) when npm would change it.
lock-nodejs: $(STAMP)
	grep -Ev '^(#|$$)' images/nodejs/versions | while read -r flavor version; do \
	  $(BIN)/libinject lock nodejs --flavor "$$flavor" --version "$$version" --locks images/nodejs/locks || exit 1; \
	done

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
