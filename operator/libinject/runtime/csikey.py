"""The key the webhook signs CSI volume attributes with (libinject.engine.signature).

It lives in one Secret of the operator's namespace (`csiKeySecret`, default `libinject-csi-key`,
data key `key`): every replica signs with the same key, and the CSI plugin reads that Secret
(its Role grants `get` on this one name) to check the signatures. The first replica to start
creates it; a replica that loses the create race adopts the winner's, as with the webhook's
certificates (runtime.certificates). The key is read once at start: it is never rotated by the
operator (a rotation would refuse the volumes of pods admitted before it).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from typing import Any

from libinject.engine.signature import KEY_BYTES, SECRET_DATA_KEY
from libinject.runtime import kube, logs
from libinject.runtime.config import RuntimeSettings

log = logs.get(__name__)


class UnusableKeyError(RuntimeError):
    """The Secret exists but holds no usable key; the message says how to repair it."""


def with_key(settings: RuntimeSettings, api: kube.Api) -> RuntimeSettings:
    """`settings` whose engine signs CSI volumes with the cluster's key (created if absent)."""
    key = ensure(api, namespace=settings.namespace, name=settings.csi_key_secret)
    libraries = replace(settings.engine.libraries, csi_key=key)
    return replace(settings, engine=replace(settings.engine, libraries=libraries))


def ensure(api: kube.Api, *, namespace: str, name: str) -> bytes:
    """The key in Secret `namespace/name`, made first if the Secret does not exist."""
    secrets_path = f"/api/v1/namespaces/{namespace}/secrets"
    for _ in range(2):  # a lost create race is followed by one read of the winner's
        try:
            secret = api.get(f"{secrets_path}/{name}")
        except kube.ApiError as error:
            if error.status != 404:
                raise
        else:
            return _key_of(secret, f"{namespace}/{name}")
        key = secrets.token_hex(KEY_BYTES).encode("ascii")  # text: a file of it may end in \n
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "libinject"}},
            "type": "Opaque",
            "data": {SECRET_DATA_KEY: base64.b64encode(key).decode("ascii")},
        }
        try:
            api.create(secrets_path, body)
        except kube.ApiError as error:
            if error.status != 409:
                raise
            continue  # another replica created it first: use theirs
        log.info("CSI signing key generated", secret=f"{namespace}/{name}")
        return key
    raise UnusableKeyError(
        f"Secret {namespace}/{name}: created and deleted while being read; retry"
    )


def _key_of(secret: dict[str, Any], where: str) -> bytes:
    encoded = (secret.get("data") or {}).get(SECRET_DATA_KEY)
    key = base64.b64decode(encoded) if encoded else b""
    if len(key) < KEY_BYTES:
        # Never replaced silently: plugins would refuse every volume signed before the change.
        raise UnusableKeyError(
            f"Secret {where}: no {SECRET_DATA_KEY!r} of at least {KEY_BYTES} bytes; delete the "
            "Secret to have a new key generated (then restart the CSI plugins' pods)"
        )
    return key
