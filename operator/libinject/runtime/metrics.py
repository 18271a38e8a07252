"""Prometheus metrics of the operator, in one registry served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

ADMISSIONS = Counter(
    "libinject_admissions",
    "Pod admissions by outcome (injected, skipped, unchanged, failed-open, refused: a review too "
    "large to read) and reason code.",
    ["outcome", "reason"],
    registry=REGISTRY,
)
ADMISSIONS_LATE = Counter(
    "libinject_admissions_late",
    "Admissions answered after the API server's timeout for the call (its `timeout` query "
    "parameter), by the outcome they would have had: the API server admitted those pods as they "
    "came, with no record on them.",
    ["outcome"],
    registry=REGISTRY,
)
# Buckets from 0.25 ms: the engine decides in about half a millisecond, so coarser buckets
# would hide every regression that matters.
ADMISSION_SECONDS = Histogram(
    "libinject_admission_duration_seconds",
    "Time from receiving an AdmissionReview to answering it, at the operator.",
    buckets=(0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
POLICIES = Gauge(
    "libinject_policies",
    "InstrumentationPolicies by their Ready condition's reason (Valid, Invalid, Paused), as this "
    "replica's reconciler last derived them (a standby keeps the values of its last pass).",
    ["reason"],
    registry=REGISTRY,
)
INDEX_ENTRIES = Gauge(
    "libinject_index_entries",
    "Objects in each in-memory index of the webhook (policies: the valid ones; image_configs: "
    "the app images whose languages are known, with --detect-languages).",
    ["index"],
    registry=REGISTRY,
)
CERTIFICATE_EXPIRY = Gauge(
    "libinject_certificate_expiry_timestamp_seconds",
    "When the webhook's serving certificate expires (Unix time).",
    registry=REGISTRY,
)
READY = Gauge(
    "libinject_ready",
    "1 when the webhook decides with primed indexes and serves TLS, else 0.",
    registry=REGISTRY,
)
STATUS_WRITES = Counter(
    "libinject_policy_status_writes",
    "Status updates the reconciler wrote to InstrumentationPolicies.",
    registry=REGISTRY,
)
