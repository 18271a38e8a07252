"""`libinject run`: the operator process.

One asyncio loop runs, side by side: the serving Kopf operator (indexes and the admission
webhook, in every replica), the reconciling Kopf operator (policy status and events, active in
one replica through Kopf peering), the probe and metrics server, and the certificate keeper.
A separate Kopf operator is needed for each because Kopf pauses every watch of a standby peer,
and the webhook must keep its indexes live in every replica.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
from collections.abc import Coroutine
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import kopf

from libinject.engine.settings import EngineSettings
from libinject.runtime import caches, csikey, kube, logs, peering, probes, reconciling, serving
from libinject.runtime.automode import AutoMode
from libinject.runtime.certificates import Certificates
from libinject.runtime.config import MAX_PRIORITY, RuntimeSettings
from libinject.runtime.detection import Detector
from libinject.runtime.digests import Listener, Resolver
from libinject.runtime.webhook import WebhookServer

TLS_LISTENING = "webhook listening"
IDLE_WORKER_SECONDS = 0.3
log = logs.get(__name__)


def run(settings: RuntimeSettings) -> int:
    logs.configure(settings.log_format)
    asyncio.run(_operate(settings))
    return 0


async def _operate(settings: RuntimeSettings) -> None:
    readiness = probes.Readiness([serving.INDEXES_PRIMED, TLS_LISTENING])
    api = kube.Api()
    certificates = Certificates(settings, api)
    files = await certificates.prepare()
    settings = await asyncio.to_thread(csikey.with_key, settings, api)
    await asyncio.to_thread(peering.ensure, api, settings.peering)
    stop = asyncio.Event()
    _name_this_replica()
    server = WebhookServer(
        port=settings.webhook.port,
        cert_file=files.cert_file,
        key_file=files.key_file,
        deadline=settings.webhook.deadline,
        on_listening=lambda: readiness.mark(TLS_LISTENING),
    )
    engine = _engine_settings(settings)
    auto_mode = AutoMode(engine, server_version=await _server_version(api))
    picture = reconciling.Picture(engine, api)
    resolver = _resolver(settings, listeners=(auto_mode.use_digests, picture.use_digests))
    detector = _detector(settings, auto_mode=auto_mode)
    existing = set(asyncio.all_tasks())
    tasks = [
        *await _serving_operator(
            auto_mode=auto_mode,
            readiness=readiness,
            server=server,
            picture=picture,
            resolver=resolver,
            detector=detector,
            stop=stop,
        ),
        *await _reconciling_operator(settings, picture=picture, stop=stop),
    ]
    if certificates.generated:  # given files are someone else's to renew (cert-manager)
        tasks.append(_task(certificates.keep_current(), "certificate keeper"))
    if resolver is not None:
        tasks.append(_task(resolver.keep_current(), "digest resolver"))
    if detector is not None:
        tasks.append(_task(detector.keep_current(), "language detector"))
    # Kopf installs signal handlers per operator, the last one replacing the others': one
    # handler of ours stops both.
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    log.info("operator starting", namespace=settings.namespace, port=settings.webhook.port)
    async with probes.serving(readiness, port=settings.probe_port):
        await kopf.run_tasks(tasks, ignored=existing)


def _engine_settings(settings: RuntimeSettings) -> EngineSettings:
    """The engine's settings; with digests pinned, or languages detected, empty tables until the
    first are found (pods get the tag meanwhile, or every library, and their record says so)."""
    libraries = replace(
        settings.engine.libraries,
        digests=MappingProxyType({}) if settings.digests.pin else None,
        detection=MappingProxyType({}) if settings.detect_languages else None,
    )
    return replace(settings.engine, libraries=libraries)


def _resolver(settings: RuntimeSettings, *, listeners: tuple[Listener, ...]) -> Resolver | None:
    if not settings.digests.pin:
        return None
    resolver = Resolver(
        crane=settings.digests.crane,
        registry=settings.engine.libraries.registry,
        interval=settings.digests.interval,
    )
    for listener in listeners:
        resolver.listen(listener)
    return resolver


def _detector(settings: RuntimeSettings, *, auto_mode: AutoMode) -> Detector | None:
    if not settings.detect_languages:
        return None
    detector = Detector(crane=settings.digests.crane)
    detector.listen(auto_mode.use_detection)
    return detector


async def _server_version(api: kube.Api) -> str | None:
    """The API server's version, or None (logged): `auto` then never chooses image volumes, and
    each pod's record says why."""
    try:
        return await asyncio.to_thread(kube.server_version, api)
    except kube.ApiError as error:
        log.warning(
            "API server version not read: auto mode will not use image volumes", error=str(error)
        )
        return None


async def _serving_operator(
    *,
    auto_mode: AutoMode,
    readiness: probes.Readiness,
    server: WebhookServer,
    picture: reconciling.Picture,
    resolver: Resolver | None,
    detector: Detector | None,
    stop: asyncio.Event,
) -> list[asyncio.Task[Any]]:
    kopf_settings = _kopf_settings()
    kopf_settings.admission.server = server
    kopf_settings.admission.managed = None  # the configuration ships in manifests/
    registry = serving.registry(
        auto_mode=auto_mode,
        state=caches.CacheState(),
        readiness=readiness,
        in_flight=server.in_flight,
        deletions=picture,
        resolver=resolver,
        detector=detector,
    )
    return [
        *await kopf.spawn_tasks(
            registry=_with_login(registry),
            settings=kopf_settings,
            clusterwide=True,
            standalone=True,
            stop_flag=stop,
        )
    ]


async def _reconciling_operator(
    settings: RuntimeSettings, *, picture: reconciling.Picture, stop: asyncio.Event
) -> list[asyncio.Task[Any]]:
    kopf_settings = _kopf_settings()
    kopf_settings.peering.name = settings.peering
    kopf_settings.peering.mandatory = True
    # Equal priorities would keep every replica active; a random one elects the highest.
    kopf_settings.peering.priority = (
        settings.peering_priority or secrets.randbelow(MAX_PRIORITY) + 1
    )
    # A SIGKILLed active replica is presumed alive until its keep-alive expires: 20 s rather than
    # Kopf's 60 before a standby takes over the reconciling (the webhook is never affected).
    kopf_settings.peering.lifetime = 20
    return [
        *await kopf.spawn_tasks(
            registry=_with_login(reconciling.registry(picture)),
            settings=kopf_settings,
            clusterwide=True,
            stop_flag=stop,
        )
    ]


def _name_this_replica() -> None:
    """Kopf names this replica to its peers by POD_ID (the Deployment sets it to the pod's
    name); elsewhere, host and process. Kopf's own guess asks the password database for the user,
    which has no entry for the image's uid."""
    os.environ.setdefault("POD_ID", f"{socket.gethostname()}-{os.getpid()}")


def _with_login(registry: kopf.OperatorRegistry) -> kopf.OperatorRegistry:
    """Kopf logs in with the same credentials as our own client, pykube-ng's (a registry made by
    hand has none of the default login handlers)."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_pykube(**kwargs)

    return registry


def _kopf_settings() -> kopf.OperatorSettings:
    kopf_settings = kopf.OperatorSettings()
    # Resources are discovered once at start: watching CRDs for new ones would need cluster-wide
    # read access to every CRD, and ours is installed before the operator.
    kopf_settings.scanning.disabled = True
    # Kopf turns its log lines about an object into Events; only its warnings deserve that.
    kopf_settings.posting.level = logging.WARNING
    # Kopf keeps a worker per object alive this long after its last event (5 s by default): at
    # start-up, with every namespace listed at once, thousands of idle workers held their events
    # (bench/scale.py: 361 -> 336 MiB with 10,000 namespaces, statuses converged sooner too).
    kopf_settings.queueing.idle_timeout = IDLE_WORKER_SECONDS
    return kopf_settings


def _task(coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    return asyncio.create_task(coroutine, name=name)
