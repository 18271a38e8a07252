"""The webhook's serving certificate: given files (cert-manager), or generated and shared.

Generated material lives in one Secret of the operator's namespace so every replica serves the same
chain. The first replica to start creates it; a replica that loses a create or update race adopts
the winner's. Each replica writes the Secret's chain to files for its TLS listener (which reloads
them in place) and keeps the MutatingWebhookConfiguration's caBundle equal to the Secret's bundle.
Renewal happens well before expiry (pki.renew), with the old CA still trusted meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from libinject.runtime import kube, logs, metrics, pki
from libinject.runtime.config import RuntimeSettings

CHECK_SECONDS = 600.0  # renewal starts a third of a lifetime (30 days) early: ample margin
log = logs.get(__name__)


@dataclass(frozen=True)
class ServingFiles:
    cert_file: Path
    key_file: Path


def hosts(settings: RuntimeSettings) -> list[str]:
    """The names the serving certificate covers: the configured host, and for a Service name
    (`<name>.<namespace>.svc`) its cluster-domain form too."""
    host = settings.webhook.host
    return [host, f"{host}.cluster.local"] if host.endswith(".svc") else [host]


class Certificates:
    def __init__(self, settings: RuntimeSettings, api: kube.Api) -> None:
        self.settings = settings
        self.api = api
        directory = settings.webhook.cert_dir
        self.files = ServingFiles(directory / "tls.crt", directory / "tls.key")

    async def prepare(self) -> ServingFiles:
        """Files for the listener: the given ones, or the shared Secret's, written out."""
        webhook = self.settings.webhook
        if not self.generated and webhook.cert_file and webhook.key_file:
            metrics.CERTIFICATE_EXPIRY.set(pki.expiry(webhook.cert_file.read_bytes()).timestamp())
            return ServingFiles(webhook.cert_file, webhook.key_file)
        await asyncio.to_thread(self.refresh)
        return self.files

    @property
    def generated(self) -> bool:
        """Whether the operator makes its certificates (no files were given)."""
        return self.settings.webhook.cert_file is None

    async def keep_current(self) -> None:
        """Renews generated certificates for the process's life (the listener reloads them)."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # the webhook must outlive any API hiccup: retried next round
                log.exception("certificate refresh failed; the current chain is still served")

    def refresh(self) -> pki.Material:
        """Reads (or creates) the Secret, renews what is due, and syncs files and caBundle."""
        material = self._current()
        # Trust first, then serve: the bundle already holds the CA of the files about to be
        # served, so the API server never meets a certificate it cannot verify.
        self._sync_ca_bundle(material.bundle)
        files_changed = self._write_files(material)
        expires = pki.expiry(material.serving.certificate)
        metrics.CERTIFICATE_EXPIRY.set(expires.timestamp())
        if files_changed:
            log.info("serving certificate in place", expires=expires.isoformat())
        return material

    def _current(self) -> pki.Material:
        names = hosts(self.settings)
        secret = self._read_secret()
        if secret is None:
            material = pki.new_material(hosts=names, now=datetime.now(UTC))
            return self._create_secret(material)
        try:
            material = pki.from_secret_data(secret.get("data") or {})
        except pki.InvalidMaterial as error:
            # Not ours to keep (made by hand, or damaged): the webhook needs a working chain.
            log.warning("webhook Secret unusable, replacing it", reason=str(error))
            return self._update_secret(secret, pki.new_material(hosts=names, now=datetime.now(UTC)))
        renewed = pki.renew(material, hosts=names, now=datetime.now(UTC))
        if renewed is None:
            return material
        return self._update_secret(secret, renewed)

    def _read_secret(self) -> dict[str, Any] | None:
        try:
            return self.api.get(f"{self._secrets}/{self.settings.webhook.secret}")
        except kube.ApiError as error:
            if error.status == 404:
                return None
            raise

    def _create_secret(self, material: pki.Material) -> pki.Material:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.settings.webhook.secret,
                "labels": {"app.kubernetes.io/managed-by": "libinject"},
            },
            "type": "Opaque",
            "data": dict(pki.to_secret_data(material)),
        }
        try:
            self.api.create(self._secrets, body)
            log.info("webhook certificates generated", secret=self.settings.webhook.secret)
            return material
        except kube.ApiError as error:
            if error.status != 409:
                raise
        return self._current()  # another replica created it first: use theirs

    def _update_secret(self, secret: dict[str, Any], material: pki.Material) -> pki.Material:
        name = secret["metadata"]["name"]
        # The resourceVersion read above (kept in the body) makes this a compare-and-swap
        # between replicas.
        body = {**secret, "data": dict(pki.to_secret_data(material))}
        try:
            self.api.replace(f"{self._secrets}/{name}", body)
            log.info("webhook certificates renewed", secret=name)
            return material
        except kube.ApiError as error:
            if error.status != 409:
                raise
        return self._current()

    def _write_files(self, material: pki.Material) -> bool:
        chain = material.serving.certificate
        if self.files.cert_file.exists() and self.files.cert_file.read_bytes() == chain:
            return False
        self.files.cert_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Key first, then certificate, each by rename: the listener never reads a torn file, and
        # it loads a pair only when the two match.
        _write_atomically(self.files.key_file, material.serving.key, mode=0o600)
        _write_atomically(self.files.cert_file, chain, mode=0o644)
        return True

    def _sync_ca_bundle(self, bundle: bytes) -> None:
        secret = self._read_secret()
        if secret is not None and pki.from_secret_data(secret.get("data") or {}).bundle != bundle:
            return  # another replica renewed since we read: its bundle is the one to publish
        name = self.settings.webhook.configuration
        path = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}"
        try:
            current = self.api.get(path)
        except kube.ApiError as error:
            if error.status != 404:
                raise
            log.warning("no webhook configuration to give the CA bundle to", name=name)
            return
        encoded = base64.b64encode(bundle).decode("ascii")
        webhooks = current.get("webhooks") or []
        if all(hook.get("clientConfig", {}).get("caBundle") == encoded for hook in webhooks):
            return
        # `add` sets a member whether or not it exists (RFC 6902), so one form fits both cases.
        patch = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded}
            for i in range(len(webhooks))
        ]
        self.api.patch(path, patch, content_type=kube.JSON_PATCH)
        log.info("webhook caBundle updated", configuration=name)

    @property
    def _secrets(self) -> str:
        return f"/api/v1/namespaces/{self.settings.namespace}/secrets"


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Created with its final mode (a key is never readable by others, not even for a moment),
    then renamed over the old file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
    with os.fdopen(os.open(temporary, flags, mode), "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
