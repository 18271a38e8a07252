"""/healthz, /readyz and /metrics over plain HTTP, for the kubelet and Prometheus.

Readiness is a set of named conditions (the indexes primed, the TLS listener up): the pod joins
the webhook Service only when all hold, and /readyz says which ones are missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from libinject.runtime import metrics


class Readiness:
    def __init__(self, required: Iterable[str]) -> None:
        self._missing = set(required)
        metrics.READY.set(0 if self._missing else 1)

    def mark(self, condition: str) -> None:
        self._missing.discard(condition)
        metrics.READY.set(0 if self._missing else 1)

    @property
    def missing(self) -> list[str]:
        return sorted(self._missing)

    @property
    def ready(self) -> bool:
        return not self._missing


def application(readiness: Readiness) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if readiness.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"waiting for: {', '.join(readiness.missing)}\n")

    async def metrics_page(_: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


@asynccontextmanager
async def serving(readiness: Readiness, *, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(application(readiness), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, None, port).start()
        yield
    finally:
        await runner.cleanup()
