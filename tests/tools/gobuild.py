"""Builds the Go tools the tests run, once per source version, cached outside git.

The cache key is a hash of the tool's go.mod, go.sum and sources, so editing a pin rebuilds it.
Cache root: $LIBINJECT_CACHE or ~/.cache/libinject.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

TOOLS = Path(__file__).parent


class BuildError(RuntimeError):
    """A Go tool could not be built; the message says which and why."""


def checked_output(command: list[str], *, cwd: Path | None = None) -> str:
    """Runs `command`; its standard output. BuildError with all its output when it fails."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("building the test tools needs Go 1.26+ (https://go.dev/dl) on PATH")
    return go


def cache_root() -> Path:
    return Path(os.environ.get("LIBINJECT_CACHE", Path.home() / ".cache" / "libinject"))


def go_tool(name: str) -> Path:
    """The path of the built tool `tests/tools/<name>`, building it on first use."""
    source = TOOLS / name
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    binary = cache_root() / "bin" / f"{name}-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    go = go_binary()
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=source,
        check=True,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )
    partial.rename(binary)  # atomic: a half-built binary is never cached
    return binary
