"""Where the operator and the CSI plugin run from in tests and benchmarks: the runtime's own
locked environment (`.venv-runtime`, requirements.lock, made by `make` beside `.venv`), as in
their image. No test-only package (the `kubernetes` client, pytest, rich) is importable there,
so their imports, and the memory the benchmarks report, are what a cluster runs."""

from __future__ import annotations

from pathlib import Path

ENVIRONMENT = Path(__file__).parents[2] / ".venv-runtime"


def libinject() -> Path:
    """The runtime environment's `libinject` command; a clear error when it was never made."""
    command = ENVIRONMENT / "bin" / "libinject"
    if not command.exists():
        raise FileNotFoundError(f"{command} is missing: run `make .venv/.installed` (or make test)")
    return command
