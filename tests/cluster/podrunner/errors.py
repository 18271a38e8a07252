"""What the pod runner raises: each error names the pod's part it is about."""

from __future__ import annotations


class PodRunnerError(RuntimeError):
    """The pod could not be run as the kubelet would run it."""


class ContainerConfigError(PodRunnerError):
    """A container's configuration cannot be resolved (the kubelet's CreateContainerConfigError):
    a missing ConfigMap or key, an unsupported field path, an empty command, ..."""


class UnsupportedVolumeError(PodRunnerError):
    """A volume of a type the runner does not make."""

    def __init__(self, volume: str, kind: str, *, detail: str = "") -> None:
        super().__init__(
            f"volume {volume!r} is of type {kind!r}, which the pod runner does not support"
            + (f" ({detail})" if detail else "")
        )
        self.volume = volume
        self.kind = kind
        self.detail = detail


class CSIVolumeError(PodRunnerError):
    """The CSI node plugin refused or failed a call for a volume (the kubelet's FailedMount)."""

    def __init__(self, volume: str, call: str, detail: str) -> None:
        super().__init__(f"volume {volume!r}: {call} failed: {detail}")
        self.volume = volume
        self.call = call
        self.detail = detail


class ImagePullError(PodRunnerError):
    """crane could not resolve or export an image."""

    def __init__(self, reference: str, detail: str) -> None:
        super().__init__(f"pulling {reference}: {detail}")
        self.reference = reference
        self.detail = detail


class InitContainerError(PodRunnerError):
    """An init container exited non-zero (or ran past its timeout: `exit_code` None)."""

    def __init__(self, container: str, *, exit_code: int | None, output: str) -> None:
        how = "timed out" if exit_code is None else f"exited with code {exit_code}"
        super().__init__(f"init container {container!r} {how}; its output:\n{output}")
        self.container = container
        self.exit_code = exit_code
        self.output = output
