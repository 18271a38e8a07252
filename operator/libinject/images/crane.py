"""Pushing a library image with go-containerregistry's `crane`: no Docker engine needed.

`crane append` with no base starts from an empty image and uploads the layer; `crane mutate`
then sets the platform and labels and re-tags. The result is the pushed digest.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


class PushError(Exception):
    """crane failed; the message has its command and output."""


def push(*, crane: Path, layer: Path, reference: str, platform: str, labels: dict[str, str]) -> str:
    """Pushes a one-layer image to `reference` and returns its digest."""
    _crane(crane, "append", "--new_layer", str(layer), "--new_tag", reference)
    label_flags = [f"--label={key}={value}" for key, value in sorted(labels.items())]
    _crane(crane, "mutate", reference, f"--set-platform={platform}", *label_flags, "-t", reference)
    return _crane(crane, "digest", reference).strip()


def _crane(crane: Path, *args: str) -> str:
    result = subprocess.run([str(crane), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PushError(f"crane {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
