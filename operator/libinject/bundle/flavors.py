"""What each Python flavor's bundle installs, and what it leaves out.

A flavor's `version` is the one release users name in policies and image tags: ddtrace's own
version, or the OpenTelemetry Python contrib release (`0.66b1`) that pins the distro and every
instrumentation together.
"""

from __future__ import annotations

from dataclasses import dataclass

from libinject.api.types import Flavor

# Frameworks and clients the OpenTelemetry flavor instruments out of the box: the common web
# frameworks, HTTP clients and databases. An instrumentation only activates when the application
# has the library it instruments, so unused ones cost a directory listing, not an import.
OTEL_INSTRUMENTATIONS = (
    "asgi",
    "dbapi",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "logging",
    "psycopg2",
    "redis",
    "requests",
    "sqlalchemy",
    "sqlite3",
    "starlette",
    "urllib",
    "urllib3",
    "wsgi",
)


@dataclass(frozen=True)
class Recipe:
    requirements: tuple[str, ...]
    # Distributions removed after the install: they clash with applications' own copies and
    # the library works without them.
    excluded: tuple[str, ...]


def recipe(flavor: Flavor, version: str) -> Recipe:
    if flavor is Flavor.DDTRACE:
        # protobuf is only needed by optional ddtrace features and clashes with applications'
        # pinned protobuf (dd-trace-py's own image drops it too).
        return Recipe((f"ddtrace=={version}",), excluded=("protobuf",))
    instrumentations = tuple(
        f"opentelemetry-instrumentation-{name}=={version}" for name in OTEL_INSTRUMENTATIONS
    )
    # The OTLP/HTTP exporter, not the gRPC one: grpcio is large, native, and a classic clash
    # with applications that use gRPC themselves. The HTTP exporter needs protobuf, so it stays.
    return Recipe(
        (
            f"opentelemetry-distro=={version}",
            "opentelemetry-exporter-otlp-proto-http",
            *instrumentations,
        ),
        excluded=(),
    )
