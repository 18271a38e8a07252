"""helm, as built by cluster.build, run against one kubeconfig (or none: lint and template)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries the command and its output."""


@dataclass(frozen=True)
class Helm:
    binary: Path
    kubeconfig: Path | None = None

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        scope = [] if self.kubeconfig is None else [f"--kubeconfig={self.kubeconfig}"]
        result = subprocess.run(
            [str(self.binary), *scope, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result
