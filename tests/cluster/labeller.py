"""A second mutating webhook for the tests: it adds a label to each pod of one namespace.

Registered under a name that sorts after ours, it changes every pod after our webhook did, which
is what makes the API server call ours again (reinvocationPolicy IfNeeded): a real reinvocation,
not a simulated one. It serves HTTPS on loopback from a thread, with a certificate of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes import client

from cluster import harness, kubejson
from libinject.runtime import pki

NAME = "zz-test-labeller"  # after "libinject": webhooks are called in name order
LABEL = ("test.libinject.dev/labelled", "true")


@contextmanager
def labelling_webhook(
    admin: client.ApiClient, *, namespace: str, directory: Path
) -> Iterator[None]:
    material = pki.new_material(hosts=["127.0.0.1"], now=datetime.now(UTC))
    cert, key = directory / "labeller.crt", directory / "labeller.key"
    cert.write_bytes(material.serving.certificate)
    key.write_bytes(material.serving.key)
    port = harness.free_port()
    loop = asyncio.new_event_loop()
    runner = loop.run_until_complete(_start(cert, key=key, port=port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    hooks = client.AdmissionregistrationV1Api(admin)
    try:
        hooks.create_mutating_webhook_configuration(
            kubejson.body(_configuration(namespace, port=port, bundle=material.bundle))
        )
        try:
            yield
        finally:
            # failurePolicy Fail: a leftover configuration would refuse the namespace's pods.
            hooks.delete_mutating_webhook_configuration(NAME)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _start(cert: Path, *, key: Path, port: int) -> web.AppRunner:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/label", _label)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    return runner


async def _label(request: web.Request) -> web.Response:
    review = await request.json()
    labels = review["request"]["object"]["metadata"].get("labels")
    key = LABEL[0].replace("/", "~1")
    patch: list[dict[str, Any]] = (
        [{"op": "add", "path": f"/metadata/labels/{key}", "value": LABEL[1]}]
        if labels is not None
        else [{"op": "add", "path": "/metadata/labels", "value": dict([LABEL])}]
    )
    answer = {
        "uid": review["request"]["uid"],
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
    }
    return web.json_response(
        {"apiVersion": review["apiVersion"], "kind": review["kind"], "response": answer}
    )


def _configuration(namespace: str, *, port: int, bundle: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME},
        "webhooks": [
            {
                "name": "labeller.test.libinject.dev",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/label",
                    "caBundle": base64.b64encode(bundle).decode(),
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail",  # the test must know it ran
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            }
        ],
    }
