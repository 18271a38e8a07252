"""Readiness is the conjunction of named conditions, mirrored by the `libinject_ready` gauge, and the
real probe server on loopback answers /healthz, /readyz (saying what is missing) and /metrics."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from cluster.harness import free_port
from libinject.runtime import probes
from libinject.runtime.metrics import REGISTRY
from libinject.runtime.probes import Readiness

CONDITIONS = ("tls listening", "indexes primed")


def gauge() -> float | None:
    return REGISTRY.get_sample_value("libinject_ready")


@pytest.mark.parametrize(
    ("marks", "missing"),
    [
        pytest.param((), ["indexes primed", "tls listening"], id="none-marked"),
        pytest.param(("indexes primed",), ["tls listening"], id="one-marked"),
        pytest.param(("unrelated",), ["indexes primed", "tls listening"], id="unknown-mark"),
        pytest.param(("tls listening", "indexes primed"), [], id="all-marked"),
        pytest.param(("indexes primed", "indexes primed", "tls listening"), [], id="marked-twice"),
    ],
)
def test_ready_only_when_every_condition_is_marked(
    marks: tuple[str, ...], missing: list[str]
) -> None:
    readiness = Readiness(CONDITIONS)
    for condition in marks:
        readiness.mark(condition)
    assert readiness.missing == missing
    assert readiness.ready is (not missing)
    assert gauge() == (0.0 if missing else 1.0)


def test_a_new_readiness_resets_the_gauge() -> None:
    """A restarted server starts unready even though the registry outlives it."""
    Readiness(["tls listening"]).mark("tls listening")
    assert gauge() == 1.0
    Readiness(["tls listening"])
    assert gauge() == 0.0


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    content_type: str


Get = Callable[[str], Awaitable[Reply]]


def served(readiness: Readiness, scenario: Callable[[Get], Awaitable[None]]) -> int:
    """Runs the probe server on a free port for the length of `scenario`; returns the port."""
    port = free_port()

    async def main() -> None:
        async with probes.serving(readiness, port=port), aiohttp.ClientSession() as session:

            async def get(path: str) -> Reply:
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    return Reply(response.status, await response.text(), response.content_type)

            await scenario(get)

    asyncio.run(main())
    return port


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/healthz", 200, id="healthz"),
        pytest.param("/readyz", 503, id="readyz"),
        pytest.param("/metrics", 200, id="metrics"),
        pytest.param("/mutate-pods", 404, id="nothing-else"),
    ],
)
def test_status_of_each_endpoint_while_not_ready(path: str, status: int) -> None:
    """Liveness does not wait for readiness: a slow start must not get the pod killed."""

    async def scenario(get: Get) -> None:
        assert (await get(path)).status == status

    served(Readiness(CONDITIONS), scenario)


def test_readyz_lists_what_is_missing_until_everything_is_marked() -> None:
    readiness = Readiness(CONDITIONS)

    async def scenario(get: Get) -> None:
        waiting = await get("/readyz")
        assert (waiting.status, waiting.text) == (
            503,
            "waiting for: indexes primed, tls listening\n",
        )
        readiness.mark("indexes primed")
        assert (await get("/readyz")).text == "waiting for: tls listening\n"
        readiness.mark("tls listening")
        ready = await get("/readyz")
        assert (ready.status, ready.text) == (200, "ready\n")

    served(readiness, scenario)


def test_metrics_are_prometheus_text_that_follow_readiness() -> None:
    readiness = Readiness(CONDITIONS)

    async def scenario(get: Get) -> None:
        before = await get("/metrics")
        assert before.content_type == "text/plain"
        assert "# TYPE libinject_ready gauge" in before.text
        assert "\nlibinject_ready 0.0\n" in before.text
        for condition in CONDITIONS:
            readiness.mark(condition)
        assert "\nlibinject_ready 1.0\n" in (await get("/metrics")).text

    served(readiness, scenario)


def test_the_server_stops_listening_when_serving_ends() -> None:
    async def scenario(get: Get) -> None:
        assert (await get("/healthz")).text == "ok\n"

    port = served(Readiness(CONDITIONS), scenario)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
