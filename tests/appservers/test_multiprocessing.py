"""multiprocessing under the loader, both flavors, with each start method (spawn, fork,
forkserver), through a Process and a Pool.

The app's work is a sqlite3 query (both flavors instrument it, no server needed), done only in
the children. What each test checks could fail: every query arrives as exactly one span with the
service's name (so a child's buffered spans are flushed although multiprocessing ends its
children with os._exit), the tracer starts once in the main process, once in each spawned child
(a fresh interpreter), never in a forked child (it has its parent's), once in each child of the
fork server and never in the server itself, and never in the resource tracker (neither runs
application code).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from appservers.conftest import Traced, loader_lines, service_name, starts
from cluster import poll
from cluster.apps import image_env, virtualenv
from cluster.testagent import TestAgent, repeated_field

FLAVORS = ("ddtrace", "opentelemetry")
METHODS = ("spawn", "fork", "forkserver")
QUERIES = 6
WORKERS = 2  # a Pool's
# The loader's lines in multiprocessing's helper processes.
TRACKER_REFUSED = "tracer not loaded: multiprocessing's resource tracker runs no application code"
FORK_SERVER = "multiprocessing's fork server: "

# argv: start method, "process" or "pool". Prints its own pid and those of the children that
# did the work.
APP = """\
import multiprocessing
import os
import sqlite3
import sys


def query(number):
    connection = sqlite3.connect(":memory:")
    connection.cursor().execute("select ?", (number,)).fetchall()  # a cursor: both trace it
    connection.close()
    return os.getpid()


def in_process(number, results):
    results.put(query(number))


if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    if sys.argv[2] == "pool":
        pool = context.Pool({workers})
        pids = pool.map(query, range({queries}))
        pool.close()  # not terminate(): the workers end as the app asks them to
        pool.join()
    else:
        results = context.Queue()
        processes = [context.Process(target=in_process, args=(n, results)) for n in range({queries})]
        for process in processes:
            process.start()
        pids = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join()
        assert all(process.exitcode == 0 for process in processes)
    print("main", os.getpid())
    print("children", " ".join(str(pid) for pid in sorted(set(pids))))
""".replace("{queries}", str(QUERIES)).replace("{workers}", str(WORKERS))

# The exporter's fork safety: the parent exports (and keeps the connection open) before and
# while forked children export theirs. argv: the number of children.
FORKING_APP = """\
import multiprocessing
import sqlite3
import sys
import time


def queries(count):
    connection = sqlite3.connect(":memory:")
    for number in range(count):
        connection.cursor().execute("select ?", (number,)).fetchall()
    connection.close()


def child():
    for _ in range(5):
        queries(4)
        time.sleep(0.05)


if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    queries(10)
    time.sleep(1)  # the batch leaves: a keep-alive connection now sits in the exporter's pool
    children = [context.Process(target=child) for _ in range(int(sys.argv[1]))]
    for process in children:
        process.start()
    for _ in range(10):  # the parent exports while its children do
        queries(2)
        time.sleep(0.1)
    for process in children:
        process.join()
    assert all(process.exitcode == 0 for process in children)
"""
FORKING_CHILDREN = 4
FORKING_SPANS = 10 + 10 * 2 + FORKING_CHILDREN * 5 * 4


def run_app(
    source: str, *args: str, env: dict[str, str], where: Path
) -> subprocess.CompletedProcess[str]:
    (where / "app.py").write_text(source)
    python = Path(env["PATH"].split(":")[0]) / "python"
    return subprocess.run(
        [str(python), "app.py", *args],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def query_spans(agent: TestAgent, flavor: str) -> list[tuple[str, str]]:
    """(service, span id) of every sqlite3 query span the agent holds."""
    if flavor == "ddtrace":
        return [
            (span["service"], str(span["span_id"]))
            for trace in agent.traces()
            for span in trace
            if span["name"] == "sqlite.query"
        ]
    return [
        (service, str(span.get("span_id", span.get("spanId"))))
        for service, span in otlp_spans_by_service(agent)
        if any(attribute["key"] == "db.system" for attribute in span.get("attributes", []))
    ]


def otlp_spans_by_service(agent: TestAgent) -> list[tuple[str, dict[str, Any]]]:
    """Every OTLP span the agent holds, with its resource's service name."""
    return [
        (service_name(resource), span)
        for request in agent.otlp_traces()
        for resource in repeated_field(request, "resource_spans")
        for scope in repeated_field(resource, "scope_spans")
        for span in scope.get("spans", [])
    ]


def arrived(agent: TestAgent, flavor: str, count: int) -> list[tuple[str, str]]:
    """The query spans once `count` arrived, and after a further export period, so that a
    duplicate sent late is counted too."""

    def enough() -> list[tuple[str, str]]:
        return query_spans(agent, flavor) if len(query_spans(agent, flavor)) >= count else []

    try:
        poll.until(enough, what=f"{count} query spans", timeout=30)
    except TimeoutError as error:
        raise AssertionError(f"{error}; arrived: {query_spans(agent, flavor)}") from None
    time.sleep(1.5)  # a further export period (the schedule delay is 200 ms)
    return query_spans(agent, flavor)


@pytest.fixture(scope="module")
def app_env() -> dict[str, str]:
    """The image of a plain Python app: the host's interpreter in a virtualenv of its own."""
    return image_env(virtualenv(()))


@pytest.mark.parametrize("kind", ["process", "pool"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flavor", FLAVORS)
def test_multiprocessing_children_are_traced_once(
    flavor: str,
    method: str,
    kind: str,
    traced: Traced,
    agent: TestAgent,
    app_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Every query in a child is one span of the service; tracer starts counted per process:
    the main process once, each spawned child and each fork-server child once, forked children
    and multiprocessing's helpers (fork server, resource tracker) never."""
    env = traced(flavor, service="mp-app", base=app_env)
    env["DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED"] = "true"  # spans name the service
    done = run_app(APP, method, kind, env=env, where=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    said = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    main, children = int(said["main"]), {int(pid) for pid in said["children"].split()}
    lines = loader_lines(done.stderr)
    started = starts(done.stderr)
    assert started.pop(main) == 1, done.stderr[-3000:]
    if method == "fork":
        assert not started, done.stderr[-3000:]
    else:  # spawned children and the fork server's are fresh processes: one start each
        assert children <= set(started), done.stderr[-3000:]
        assert list(started.values()) == [1] * (WORKERS if kind == "pool" else QUERIES)
    servers = [pid for pid, said in lines.items() if any(FORK_SERVER in x for x in said)]
    assert len(servers) == (method == "forkserver"), done.stderr[-3000:]
    trackers = [pid for pid, said in lines.items() if any(TRACKER_REFUSED in x for x in said)]
    if method != "fork":  # spawn and forkserver start a resource tracker
        assert len(trackers) == 1, done.stderr[-3000:]
    assert not set(servers + trackers) & set(started)
    found = arrived(agent, flavor, QUERIES)
    assert [service for service, _ in found] == ["mp-app"] * QUERIES, found
    assert len({span_id for _, span_id in found}) == QUERIES


@pytest.mark.parametrize("flavor", FLAVORS)
def test_forked_children_export_on_their_own_connections(
    flavor: str, traced: Traced, agent: TestAgent, app_env: dict[str, str], tmp_path: Path
) -> None:
    """A parent that has exported holds a keep-alive connection; children forked from it
    export while it does. Shared across the fork, that one socket would carry two processes'
    requests at once: requests corrupted, answers read by the wrong process, spans lost or
    sent twice. Every span arrives exactly once."""
    env = traced(flavor, service="forking-app", base=app_env)
    env["DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED"] = "true"
    done = run_app(FORKING_APP, str(FORKING_CHILDREN), env=env, where=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(starts(done.stderr).values()) == [1], done.stderr[-3000:]
    found = arrived(agent, flavor, FORKING_SPANS)
    assert len(found) == FORKING_SPANS, done.stderr[-3000:]
    assert len({span_id for _, span_id in found}) == FORKING_SPANS
