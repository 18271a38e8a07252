"""Where the plugin finds the key the webhook signs CSI volumes with (libinject.engine.signature).

The operator generates the key (64 hex digits: 32 random bytes, as text so a file holding it may
end with a newline) into a Secret of its namespace (`libinject-csi-key`, data key `key`). The
plugin reads it through the API (`--key-secret NAMESPACE/NAME`, a Role granting `get` on that one
Secret), or from a file (`--key-file`: a mounted Secret, or the tests' key). Either
way the key is read again when a signature does not verify with the one held, at most once per
`REFRESH` seconds, so a key the operator made after the plugin started is picked up without a
restart, and a stream of forged volumes costs at most one read per interval.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path

from libinject.engine.signature import KEY_BYTES, SECRET_DATA_KEY
from libinject.runtime import kube, logs

REFRESH = 10.0  # seconds between reads of the key when signatures do not verify

_log = logs.get("libinject.csi.keys")


class KeyUnavailableError(RuntimeError):
    """No key could be read (the Secret or file is missing, unreadable or too short)."""


class Keys:
    """The current key from `read`, cached; `fresh()` reads it again (rate-limited)."""

    def __init__(
        self,
        read: Callable[[], bytes],
        *,
        source: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._read = read
        self._clock = clock
        self._lock = threading.Lock()
        self._key: bytes = b""
        self._read_at = float("-inf")

    def current(self) -> bytes:
        """The key held, read first if none is (KeyUnavailableError when it cannot be)."""
        with self._lock:
            if not self._key:
                self._load()
            return self._key

    def fresh(self) -> bytes:
        """The key read again, unless it was read less than REFRESH seconds ago."""
        with self._lock:
            if self._clock() - self._read_at >= REFRESH:
                self._load()
            return self._key

    def _load(self) -> None:
        self._read_at = self._clock()
        try:
            key = self._read()
        except KeyUnavailableError:
            if self._key:  # keep serving with the key held: the source may come back
                return
            raise
        if len(key) < KEY_BYTES:
            raise KeyUnavailableError(f"{self.source}: the key is shorter than {KEY_BYTES} B")
        if key != self._key:
            _log.info("signing key loaded", source=self.source)
        self._key = key


def from_file(path: Path) -> Keys:
    def read() -> bytes:
        try:
            return path.read_bytes().strip()
        except OSError as error:
            raise KeyUnavailableError(f"{path}: {error}") from error

    return Keys(read, source=str(path))


def from_secret(api: kube.Api, *, namespace: str, name: str) -> Keys:
    """The key in Secret `namespace/name` (data key `key`), read through the API."""

    def read() -> bytes:
        try:
            secret = api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except Exception as error:  # refused, unreachable, timed out: the same to the plugin
            raise KeyUnavailableError(f"Secret {namespace}/{name}: {error}") from error
        encoded = (secret.get("data") or {}).get(SECRET_DATA_KEY)
        if not encoded:
            raise KeyUnavailableError(f"Secret {namespace}/{name} has no {SECRET_DATA_KEY!r}")
        return base64.b64decode(encoded)

    return Keys(read, source=f"Secret {namespace}/{name}")
