"""kubectl, as built by cluster.build, run against one kubeconfig."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries the command and its stderr."""

    def __init__(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        self.result = result


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(self.binary),
                f"--kubeconfig={self.kubeconfig}",
                f"--cache-dir={self.cache}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(args, result)
        return result

    @property
    def cache(self) -> Path:
        """Discovery cache of this cluster only: never ~/.kube/cache, which outlives it."""
        return self.kubeconfig.parent / "kubectl-cache"

    def hint(self) -> str:
        """How a person runs this kubectl by hand."""
        return f"KUBECONFIG={self.kubeconfig} {self.binary}"
