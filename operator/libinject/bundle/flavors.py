"""What each Python flavor's bundle installs, and what it leaves out.

A flavor's `version` is the one release users name in policies and image tags: ddtrace's own
version, or the OpenTelemetry Python contrib release (`0.66b1`) that pins the distro and every
instrumentation together.
"""

from __future__ import annotations

from dataclasses import dataclass

from libinject.api.types import Flavor

# What the OpenTelemetry flavor instruments: every library ddtrace patches by default for which
# the contrib release has an instrumentation (tests/bundle/test_otel_coverage.py keeps the two in
# step), plus the standard library's and the generic layers (ASGI/WSGI, DB-API, urllib3,
# SQLAlchemy). An instrumentation of a library only activates when the application has that
# library (the auto-instrumentation compares the installed versions first), so an unused one is
# never imported; the standard library's (logging, sqlite3, threading, urllib) always are.
OTEL_INSTRUMENTATIONS = (
    "aiohttp-client",
    "aiohttp-server",
    "aiokafka",
    "aiopg",
    "asgi",
    "asyncpg",
    "botocore",
    "celery",
    "dbapi",
    "django",
    "falcon",
    "fastapi",
    "flask",
    "grpc",  # the interceptors only: grpcio is the application's, never installed by the bundle
    "httpx",
    "jinja2",
    "kafka-python",
    "logging",
    "mysql",
    "mysqlclient",
    "psycopg",
    "psycopg2",
    "pymemcache",
    "pymongo",
    "pymysql",
    "pyramid",
    "redis",
    "requests",
    "sqlalchemy",
    "sqlite3",
    "starlette",
    "structlog",
    "threading",  # carries the trace into threads and executors, as ddtrace's `futures` does
    "urllib",
    "urllib3",
    "wsgi",
)

# Instrumentations the release lists for a library ddtrace patches by default, left out on
# purpose: name (as in opentelemetry-instrumentation-<name>) -> why.
OTEL_LEFT_OUT = {
    # ddtrace's asyncio integration carries its context into tasks; OpenTelemetry's context is a
    # contextvar, which every task copies already. The instrumentation would wrap every task
    # creation to trace only the coroutines named in OTEL_PYTHON_ASYNCIO_COROUTINE_NAMES_TO_TRACE.
    "asyncio": "context follows asyncio tasks without it; it costs every task for opt-in spans",
    # The generative-AI instrumentations are released on their own version lines (2.x betas)
    # with opentelemetry-util-genai, not with the contrib release: the flavor's version cannot
    # pin them, so the bundle would change with every PyPI upload.
    "openai-v2": "not part of the contrib release: its own version line, unpinnable by ours",
    "vertexai": "not part of the contrib release: its own version line, unpinnable by ours",
}

# Distributions whose project promises backward compatibility within a major version: where the
# bundle pins one exactly (SDK 1.45.1 pins its API at 1.45.1), the application's copy of this
# minor or any later one of the same major is accepted (requirements.widened). OpenTelemetry's
# versioning and stability specification
# (opentelemetry.io/docs/specs/otel/versioning-and-stability) requires a stable API package to
# stay backward compatible until its next major version, and opentelemetry-python's
# rationale.md ("Versioning and stability") promises that for its API 1.x: what SDK 1.45.1 uses
# of API 1.45 is still there in 1.45.2 and any later 1.x. Older minors are not covered (the SDK
# uses names a later API added: 1.44 lacks some), nor the SDK itself and the 0.x semantic
# conventions and instrumentations, which their versions mark unstable.
OTEL_STABLE_APIS = ("opentelemetry-api",)


@dataclass(frozen=True)
class Recipe:
    requirements: tuple[str, ...]
    # Distributions removed after the install: they clash with applications' own copies and
    # the library works without them.
    excluded: tuple[str, ...]
    # Distributions whose exact pins libinject-requires.txt widens to the same major version.
    stable_apis: tuple[str, ...] = ()


def recipe(flavor: Flavor, version: str) -> Recipe:
    if flavor is Flavor.DDTRACE:
        # protobuf is only needed by optional ddtrace features and clashes with applications'
        # pinned protobuf (dd-trace-py's own image drops it too). ddtrace pins no stable API
        # exactly (it asks opentelemetry-api for >=1,<2 already).
        return Recipe((f"ddtrace=={version}",), excluded=("protobuf",))
    instrumentations = tuple(
        f"opentelemetry-instrumentation-{name}=={version}" for name in OTEL_INSTRUMENTATIONS
    )
    # The OTLP/HTTP exporter, not the gRPC one: grpcio is large, native, and a classic clash
    # with applications that use gRPC themselves. The HTTP exporter needs protobuf, so it stays.
    # The B3 propagators, which a policy's tracing.propagators may name: the SDK refuses to start
    # with an OTEL_PROPAGATORS entry it cannot load (the Java and Node.js agents carry them).
    return Recipe(
        (
            f"opentelemetry-distro=={version}",
            "opentelemetry-exporter-otlp-proto-http",
            "opentelemetry-propagator-b3",
            *instrumentations,
        ),
        excluded=(),
        stable_apis=OTEL_STABLE_APIS,
    )
