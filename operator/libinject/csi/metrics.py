"""Prometheus metrics of the CSI node plugin, in their own registry, served on `--metrics-port`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()

# Coarse reasons of an empty volume (the `reason` label); the record and the log say more.
TIMEOUT = "timeout"  # not ready within the publish timeout (the pull goes on)
PULL_ERROR = "pull_error"  # the registry refused or could not be reached, a bad image
COLLECTED = "collected"  # removed by collection while the publish found it, twice

EMPTY_VOLUMES = Counter(
    "libinject_csi_empty_volumes",
    "Volumes published empty because the library was not ready, by coarse reason.",
    ["reason"],
    registry=REGISTRY,
)
REFUSED = Counter(
    "libinject_csi_refused_publishes",
    "NodePublishVolume calls refused, by coarse reason (libinject.csi.validate.Reason).",
    ["reason"],
    registry=REGISTRY,
)
PUBLISH_SECONDS = Histogram(
    "libinject_csi_publish_seconds",
    "Time to answer a NodePublishVolume that succeeded, by outcome (library or empty).",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60),
    registry=REGISTRY,
)
CACHE_IMAGES = Gauge(
    "libinject_csi_cache_images",
    "Library images unpacked in the node cache.",
    registry=REGISTRY,
)
GC_REMOVED = Counter(
    "libinject_csi_gc_removed_images",
    "Library images removed from the node cache after their grace period unused.",
    registry=REGISTRY,
)


def serve(port: int, address: str) -> None:
    """Serves /metrics over plain HTTP in a daemon thread."""
    start_http_server(port, addr=address, registry=REGISTRY)
