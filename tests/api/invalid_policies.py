"""Policies the API must reject, each with the field its error must name.

Shared by the Python parser's tests and by the apiserver tests: both must reject every case.
"""

from __future__ import annotations

from typing import Any

import pytest

PY = {"language": "python", "version": "4.16.0"}


def _spec(**fields: Any) -> dict[str, Any]:
    return {"libraries": [PY], **fields}


# (id, spec, field path the error names, the CRD keyword at that field which rejects it)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown-language", {"libraries": [{"language": "go", "version": "1.0.0"}]},
     "spec.libraries[0].language", "enum"),
    ("unknown-flavor", {"libraries": [{**PY, "flavor": "newrelic"}]}, "spec.libraries[0].flavor", "enum"),
    ("empty-libraries", {"libraries": []}, "spec.libraries", "minItems"),
    ("missing-libraries", {}, "spec.libraries", "required"),
    ("duplicate-language", {"libraries": [PY, {**PY, "flavor": "opentelemetry", "version": "0.66b1"}]}, "spec.libraries[1]", "x-kubernetes-list-type"),
    ("version-not-a-version", {"libraries": [{**PY, "version": "latest"}]},
     "spec.libraries[0].version", "pattern"),
    ("missing-version", {"libraries": [{"language": "python"}]}, "spec.libraries[0].version", "required"),
    ("allowed-version-pattern", {"libraries": [{**PY, "allowedVersions": ["3.x"]}]},
     "spec.libraries[0].allowedVersions[0]", "pattern"),
    ("allowed-version-glob-middle", {"libraries": [{**PY, "allowedVersions": ["3.*.1"]}]},
     "spec.libraries[0].allowedVersions[0]", "pattern"),
    ("allowed-versions-with-image",
     {"libraries": [{**PY, "image": "reg.example/py:1", "allowedVersions": ["4.*"]}]},
     "spec.libraries[0].allowedVersions", "x-kubernetes-validations"),
    ("bad-mode", _spec(injection={"mode": "sidecar"}), "spec.injection.mode", "enum"),
    ("resources-in-csi-mode",
     _spec(injection={"mode": "csi", "resources": {"limits": {"cpu": "1"}}}),
     "spec.injection.resources", "x-kubernetes-validations"),
    ("bad-size-limit", _spec(injection={"sizeLimit": "lots"}), "spec.injection.sizeLimit", "pattern"),
    ("selector-bad-operator",
     _spec(podSelector={"matchExpressions": [{"key": "app", "operator": "Contains"}]}),
     "spec.podSelector.matchExpressions[0].operator", "enum"),
    ("selector-in-without-values",
     _spec(podSelector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
     "spec.podSelector.matchExpressions[0].values", "x-kubernetes-validations"),
    ("selector-exists-with-values",
     _spec(podSelector={"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
     "spec.podSelector.matchExpressions[0].values", "x-kubernetes-validations"),
    ("selector-bad-label-value", _spec(podSelector={"matchLabels": {"app": "not valid!"}}),
     "spec.podSelector.matchLabels[app]", "pattern"),
    ("names-and-labels",
     _spec(namespaceSelector={"matchNames": ["shop"], "matchLabels": {"team": "shop"}}),
     "spec.namespaceSelector", "x-kubernetes-validations"),
    ("bad-namespace-name", _spec(namespaceSelector={"matchNames": ["Shop_NS"]}),
     "spec.namespaceSelector.matchNames[0]", "pattern"),
    ("agent-service-without-service", _spec(agent={"mode": "service"}), "spec.agent",
     "x-kubernetes-validations"),
    ("agent-url-not-a-url", _spec(agent={"mode": "url", "url": "collector:4318"}),
     "spec.agent.url", "pattern"),
    ("agent-port-out-of-range", _spec(agent={"port": 70000}), "spec.agent.port", "maximum"),
    ("priority-out-of-range", _spec(priority=5000), "spec.priority", "maximum"),
    ("env-sets-load-variable", _spec(env=[{"name": "PYTHONPATH", "value": "/x"}]), "spec.env", "x-kubernetes-validations"),
    ("env-duplicate-name",
     _spec(env=[{"name": "DD_ENV", "value": "a"}, {"name": "DD_ENV", "value": "b"}]),
     "spec.env[1]", "x-kubernetes-list-type"),
    ("paused-not-boolean", _spec(paused="yes"), "spec.paused", "type"),
    ("sample-rate-above-one", _spec(tracing={"sampleRate": 1.5}), "spec.tracing.sampleRate", "maximum"),
    ("sample-rate-negative", _spec(tracing={"sampleRate": -0.1}), "spec.tracing.sampleRate", "minimum"),
    ("sample-rate-as-text", _spec(tracing={"sampleRate": "0.5"}), "spec.tracing.sampleRate", "type"),
    ("unknown-propagator", _spec(tracing={"propagators": ["jaeger"]}), "spec.tracing.propagators[0]", "enum"),
    ("propagator-twice", _spec(tracing={"propagators": ["b3", "b3"]}), "spec.tracing.propagators[1]",
     "x-kubernetes-list-type"),
    ("datadog-propagator-with-opentelemetry",
     {"libraries": [{**PY, "flavor": "opentelemetry", "version": "0.66b1"}],
      "tracing": {"propagators": ["tracecontext", "datadog"]}},
     "spec.tracing", "x-kubernetes-validations"),
    ("env-sets-what-sample-rate-sets",
     _spec(tracing={"sampleRate": 0.5}, env=[{"name": "DD_TRACE_SAMPLE_RATE", "value": "1"}]),
     "spec.env", "x-kubernetes-validations"),
    ("env-sets-what-propagators-set",
     _spec(tracing={"propagators": ["b3"]}, env=[{"name": "OTEL_PROPAGATORS", "value": "xray"}]),
     "spec.env", "x-kubernetes-validations"),
    ("env-value-and-value-from",
     _spec(env=[{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
     "spec.env[0]", "x-kubernetes-validations"),
    ("env-source-empty", _spec(env=[{"name": "A", "valueFrom": {}}]), "spec.env[0].valueFrom",
     "x-kubernetes-validations"),
    ("env-two-sources",
     _spec(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
                                            "secretKeyRef": {"name": "s", "key": "k"}}}]),
     "spec.env[0].valueFrom", "x-kubernetes-validations"),
    # status.phase is a pod field, but not one the kubelet puts in env: the pod would be refused
    ("env-field-not-for-env", _spec(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}]),
     "spec.env[0].valueFrom.fieldRef.fieldPath", "pattern"),
    ("env-label-name-too-long",
     _spec(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{'a' * 64}']"}}}]),
     "spec.env[0].valueFrom.fieldRef.fieldPath", "pattern"),
    ("env-label-prefix-too-long",
     _spec(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{'a' * 254}/x']"}}}]),
     "spec.env[0].valueFrom.fieldRef.fieldPath", "x-kubernetes-validations"),
    ("env-secret-name", _spec(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "Keys_1", "key": "k"}}}]),
     "spec.env[0].valueFrom.secretKeyRef.name", "pattern"),
    ("env-config-map-key-dot-dot",
     _spec(env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "..k"}}}]),
     "spec.env[0].valueFrom.configMapKeyRef.key", "pattern"),
    ("env-key-missing", _spec(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
     "spec.env[0].valueFrom.secretKeyRef.key", "required"),
    ("env-unknown-resource",
     _spec(env=[{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}}}]),
     "spec.env[0].valueFrom.resourceFieldRef.resource", "enum"),
    ("env-cpu-divisor-in-bytes",
     _spec(env=[{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1Mi"}}}]),
     "spec.env[0].valueFrom.resourceFieldRef.divisor", "x-kubernetes-validations"),
    ("env-memory-divisor-not-a-unit",
     _spec(env=[{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": 2}}}]),
     "spec.env[0].valueFrom.resourceFieldRef.divisor", "x-kubernetes-validations"),
]  # fmt: skip

INVALID_CASES = [pytest.param(spec, path, id=case_id) for case_id, spec, path, _ in INVALID]
CRD_CASES = [pytest.param(path, keyword, id=case_id) for case_id, _, path, keyword in INVALID]
