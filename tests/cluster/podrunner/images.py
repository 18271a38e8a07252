"""Images from an OCI registry through crane: config, and the flattened file system.

Each pull resolves the reference to a digest first (`crane digest`), so a tag pushed again during
a run is seen; what a digest names never changes, so its export and config are kept once per
store (per test run) and every container gets its own extraction.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from cluster.podrunner.containers import Image
from cluster.podrunner.errors import ImagePullError
from libinject.engine.platforms import node_platform

PULL_TIMEOUT = 300.0


class ImageStore:
    def __init__(self, crane: Path, directory: Path) -> None:
        self.crane = crane
        self.directory = directory
        self._lock = threading.Lock()  # one download per digest, whatever the threads

    def config(self, reference: str) -> Image:
        pinned = self._pin(reference)
        path = self.directory / f"{_file_name(pinned)}.config.json"
        with self._lock:
            if not path.exists():
                _write(path, self._crane(pinned, "config", pinned))
        return image_from_config(json.loads(path.read_text()))

    def unpack(self, reference: str, target: Path) -> None:
        """The image's file system into `target` (made), owners and modes as in the image."""
        archive = self._export(self._pin(reference))
        target.mkdir(parents=True, exist_ok=True)
        command = ["tar", "-x", "-f", str(archive), "-C", str(target), "--numeric-owner", "-p"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImagePullError(reference, f"extracting {archive}: {result.stderr.strip()}")

    def _export(self, pinned: str) -> Path:
        archive = self.directory / f"{_file_name(pinned)}.tar"
        with self._lock:
            if not archive.exists():
                partial = archive.with_suffix(".partial")
                self._crane(pinned, "export", pinned, str(partial))
                partial.rename(archive)  # a half-written export is never used
        return archive

    def _pin(self, reference: str) -> str:
        """`reference` by digest: what a tag names right now."""
        if "@" in reference:
            return reference
        digest = self._crane(reference, "digest", reference).strip()
        return f"{_repository(reference)}@{digest}"

    def _crane(self, reference: str, *args: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [str(self.crane), *args, "--platform", f"linux/{architecture()}"]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=PULL_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise ImagePullError(reference, f"crane {args[0]} timed out") from None
        if result.returncode != 0:
            raise ImagePullError(reference, f"crane {args[0]}: {result.stderr.strip()}")
        return result.stdout


def image_from_config(document: dict[str, Any]) -> Image:
    """The OCI image config's `config` section (Entrypoint, Cmd, Env, WorkingDir, User)."""
    config = document.get("config") or {}
    env = dict(entry.partition("=")[::2] for entry in config.get("Env") or ())
    return Image(
        env=env,
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        working_dir=str(config.get("WorkingDir") or ""),
        user=str(config.get("User") or ""),
    )


def _repository(reference: str) -> str:
    """`host:port/repo:tag` -> `host:port/repo` (a port's colon is not a tag's)."""
    head, _, last = reference.rpartition("/")
    name = last.partition(":")[0]
    return f"{head}/{name}" if head else name


def _file_name(pinned: str) -> str:
    return pinned.rpartition("@")[2].replace(":", "-")


def architecture() -> str:
    """This machine's, as OCI names it (`amd64`): the platform pulled from an index."""
    return node_platform().removeprefix("linux/")


def _write(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.rename(path)
