"""Reading artifacts from a Maven repository over HTTPS: streamed to disk, hashed on the way.

Only exact paths of the repository layout are read (an artifact and its published checksum
files), as every Maven client reads them; nothing is listed or searched.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from libinject.bundle.stages import BundleError

_CHUNK = 1 << 20
_TIMEOUT = 60  # seconds without a byte before a read fails
_PROGRESS_EVERY = 10.0  # seconds between progress lines of a download
_MEGABYTE = 1_000_000


@dataclass(frozen=True)
class Digests:
    size: int
    sha1: str
    sha256: str


class _Hashing:
    """Size, SHA-1 and SHA-256 of bytes fed in order."""

    def __init__(self) -> None:
        self.size = 0
        # SHA-1 only to compare with the repository's published .sha1 (which every Maven
        # repository has); what a lock pins is the SHA-256.
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha1.update(chunk)
        self._sha256.update(chunk)

    def digests(self) -> Digests:
        return Digests(self.size, self._sha1.hexdigest(), self._sha256.hexdigest())


def digests(path: Path) -> Digests:
    hashing = _Hashing()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hashing.update(chunk)
    return hashing.digests()


def download(url: str, *, to: Path, say: Callable[[str], None]) -> Digests:
    """Writes the file at `url` to `to`, saying how far it got every few seconds."""
    hashing = _Hashing()
    started = last = time.monotonic()
    try:
        with _open(url) as response, to.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            say(f"downloading {url} ({total / _MEGABYTE:.1f} MB)...")
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                hashing.update(chunk)
                if time.monotonic() - last >= _PROGRESS_EVERY:
                    last = time.monotonic()
                    say(f"... {hashing.size / _MEGABYTE:.1f} of {total / _MEGABYTE:.1f} MB")
    except OSError as error:  # urllib's errors too; the partial file is the caller's to remove
        raise _failure(url, error) from error
    if total and hashing.size != total:
        raise BundleError(f"{url}: the download ended after {hashing.size} of {total} bytes")
    say(f"downloaded {hashing.size / _MEGABYTE:.1f} MB in {time.monotonic() - started:.1f} s")
    return hashing.digests()


def published_checksum(url: str, algorithm: str) -> str | None:
    """The repository's own checksum file for `url` (`<url>.sha1`, ...): its hex digest, or
    None when the repository publishes none for that algorithm."""
    try:
        with _open(f"{url}.{algorithm}") as response:
            text = response.read(1024).decode("ascii", "replace")
    except urllib.error.HTTPError as error:
        if error.code == HTTPStatus.NOT_FOUND:
            return None
        raise _failure(f"{url}.{algorithm}", error) from error
    except OSError as error:
        raise _failure(f"{url}.{algorithm}", error) from error
    words = text.split()  # some tools write "<digest>  <file name>"
    return words[0].lower() if words else ""


def _open(url: str) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "libinject"})
    response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=_TIMEOUT)
    return response


def _failure(url: str, error: OSError) -> BundleError:
    if isinstance(error, urllib.error.HTTPError):
        if error.code == HTTPStatus.NOT_FOUND:
            return BundleError(f"{url}: the repository has no such file (HTTP 404)")
        return BundleError(f"{url}: HTTP {error.code} {error.reason}")
    return BundleError(f"{url}: {getattr(error, 'reason', error)}")
