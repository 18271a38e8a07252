"""App images for language detection, pushed to a test registry with crane: an empty layer and
a config shaped as a runtime's official image leaves it (its variables, entrypoint and command),
which is all detection reads. The configs are those of python:3.12-slim, eclipse-temurin:21-jre
and a static binary's image, abridged to the fields detection reads or could misread."""

from __future__ import annotations

import subprocess
from pathlib import Path

PYTHON = {
    "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHON_VERSION=3.12.8"],
    "cmd": ["python3"],
}
JAVA = {
    "env": ["PATH=/opt/java/openjdk/bin:/usr/bin:/bin", "JAVA_HOME=/opt/java/openjdk"],
    "entrypoint": ["/__cacert_entrypoint.sh"],
}
SILENT = {"env": ["PATH=/usr/bin:/bin"], "entrypoint": ["/app"]}


def push(
    crane: Path,
    reference: str,
    *,
    env: list[str],
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
) -> str:
    """Pushes an image whose config holds `env`, `entrypoint` and `cmd`; its digest."""
    base = [str(crane), "append", "--oci-empty-base", "-f", "/dev/null", "-t", reference]
    subprocess.run(base, check=True, capture_output=True)
    mutate = [str(crane), "mutate", reference]
    mutate += [arg for variable in env for arg in ("--env", variable)]
    if entrypoint is not None:  # crane splits these at commas
        mutate += ["--entrypoint", ",".join(entrypoint)]
    if cmd is not None:
        mutate += ["--cmd", ",".join(cmd)]
    subprocess.run(mutate, check=True, capture_output=True)
    digest = subprocess.run([str(crane), "digest", reference], check=True, capture_output=True)
    return digest.stdout.decode().strip()
