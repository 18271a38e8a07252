"""The OpenTelemetry flavor instruments what the ddtrace flavor does: every library the real
ddtrace patches by default that the pinned OpenTelemetry contrib release has an instrumentation
for is in the bundle's recipe, or left out on purpose with a reason (libinject.bundle.flavors).

Both sides are read from the real packages (tests/bundle/conftest.py), so a new ddtrace default
or a new instrumentation in the release shows up here when the flavors' versions move.
"""

from __future__ import annotations

from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cluster.libraries import OPENTELEMETRY
from libinject.bundle.flavors import OTEL_INSTRUMENTATIONS, OTEL_LEFT_OUT

PREFIX = "opentelemetry-instrumentation-"
# ddtrace's integration -> the names the release's list gives the same library, where the two
# projects spell it differently; any other integration is looked up by its own name (PyPI's
# normalization: `pymysql` finds `PyMySQL`). The release's standard-library instrumentations are
# found by their own names (`sqlite3`, `threading`).
SPELLINGS = {
    "futures": ("threading",),  # ddtrace carries its context into concurrent.futures executors
    "grpc": ("grpcio",),
    "kafka": ("kafka-python",),
    "mysql": ("mysql-connector-python",),
    "mysqldb": ("mysqlclient",),
    "psycopg": ("psycopg", "psycopg2", "psycopg2-binary"),  # one ddtrace integration for both
    "vertexai": ("google-cloud-aiplatform",),
}


def release_instrumentations(lists: dict[str, Any]) -> dict[str, dict[str, Requirement]]:
    """The release's instrumentations by the library they instrument (its normalized PyPI name,
    or the instrumentation's own name for the standard library's): name -> requirement."""
    found: dict[str, dict[str, Requirement]] = {}
    for entry in lists["libraries"]:
        library = canonicalize_name(Requirement(entry["library"]).name)
        instrumentation = Requirement(entry["instrumentation"])
        found.setdefault(library, {})[instrumentation.name.removeprefix(PREFIX)] = instrumentation
    for text in lists["default"]:
        instrumentation = Requirement(text)
        name = instrumentation.name.removeprefix(PREFIX)
        found.setdefault(name, {})[name] = instrumentation
    return found


def uncovered(defaults: list[str], release: dict[str, dict[str, Requirement]]) -> list[str]:
    """`<ddtrace integration> (<instrumentation>)` for each instrumentation the release has for
    a ddtrace default that the recipe neither includes nor leaves out with a reason."""
    missing = []
    for integration in defaults:
        for library in SPELLINGS.get(integration, (canonicalize_name(integration),)):
            for name in release.get(library, {}):
                if name not in OTEL_INSTRUMENTATIONS and not OTEL_LEFT_OUT.get(name, "").strip():
                    missing.append(f"{integration} ({name})")
    return sorted(set(missing))


def test_every_library_ddtrace_patches_by_default_is_instrumented_or_left_out_with_a_reason(
    ddtrace_defaults: list[str], otel_release_lists: dict[str, Any]
) -> None:
    """Fails naming each library the ddtrace flavor traces out of the box that the OpenTelemetry
    flavor silently does not (celery was one: its apps got no spans)."""
    release = release_instrumentations(otel_release_lists)
    assert "celery" in ddtrace_defaults  # the real table was read, not an empty one
    missing = uncovered(ddtrace_defaults, release)
    assert not missing, f"add to OTEL_INSTRUMENTATIONS or OTEL_LEFT_OUT (with why): {missing}"


def test_the_spelling_table_names_real_integrations_and_real_libraries(
    ddtrace_defaults: list[str], otel_release_lists: dict[str, Any]
) -> None:
    """A stale entry (an integration ddtrace renamed, a library the release dropped) would make
    the check above pass by finding nothing: each side of every spelling exists."""
    release = release_instrumentations(otel_release_lists)
    assert set(SPELLINGS) <= set(ddtrace_defaults)
    assert {library for names in SPELLINGS.values() for library in names} <= set(release)


def test_the_recipe_names_only_instrumentations_of_this_release_at_its_version(
    otel_release_lists: dict[str, Any],
) -> None:
    """Each included instrumentation is one the release lists and pins at the flavor's version
    (a typo like `kafka` for `kafka-python` would fail the build, or worse, install another
    release's); each left-out one is listed too, has a reason, and is not also included."""
    pinned = {
        name: requirement
        for by_name in release_instrumentations(otel_release_lists).values()
        for name, requirement in by_name.items()
    }
    for name in OTEL_INSTRUMENTATIONS:
        assert name in pinned, name
        assert str(pinned[name].specifier) == f"=={OPENTELEMETRY}", (name, pinned[name])
    for name, why in OTEL_LEFT_OUT.items():
        assert name in pinned, name
        assert why.strip(), name
        assert name not in OTEL_INSTRUMENTATIONS, name
