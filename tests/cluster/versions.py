"""The one place the versions of the control plane and the Go tools the tests build are pinned.

Kubernetes 1.36 is built against etcd's 3.6 client, so the server is the newest 3.6 patch.
kwok 0.8 is built against client-go 0.36, the same minor as the control plane.
"""

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
KWOK = "v0.8.0"
# go-containerregistry's crane: the newest release `go mod tidy` accepts with Go 1.26.
CRANE = "v0.22.1"
# csi-test's csi-sanity, the CSI conformance suite. v5.6.0 and not the v5.4 line: up to v5.4.0 the
# Node Service specs' setup asks ControllerGetCapabilities of every driver, so they all fail on a
# node-only one; from v5.5 it asks only when GetPluginCapabilities offers CONTROLLER_SERVICE.
CSI_SANITY = "v5.6.0"

# The same release of Kubernetes' staging modules (k8s.io/api, ...), published as v0.<minor>.<patch>.
STAGING = "v0." + KUBERNETES.removeprefix("v1.")

# The OpenTelemetry Operator, the peer `make bench` runs beside libinject (bench/webhook.py). The Go
# module proxy serves only some of its releases; v0.148.0 is one, and builds without replaces.
OTEL_OPERATOR = "v0.148.0"

# Helm, for the chart in charts/libinject (lint, render, server dry-run; tests/live/test_chart.py).
# v4: its newest release the Go module proxy serves; builds with Go 1.26.
HELM = "v4.3.2"
