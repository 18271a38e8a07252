"""Fixtures for the loader's tests: real interpreters and real tracers installed with pip.

Only fixtures live here (test modules cannot import a conftest reliably: tests/ has several).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from libinject.bundle.stages import interpreter

PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
DDTRACE = "4.16.0"
# What the real ddtrace's libinject-requires.txt says for this interpreter (the builder's
# format: merged specifiers, normalized names).
DDTRACE_REQUIRES = (
    "bytecode >=0.14.0,<1\n"
    "ddtrace-internal ==0.1.0\n"
    "envier ~=0.6.1\n"
    "opentelemetry-api <2,>=1\n"
    "wrapt !=2.2.0,<3,>=1\n"
)


@pytest.fixture(scope="session")
def base_python() -> Callable[[str], Path]:
    """A real CPython of a version (2.7 ... 3.13): the machine's pyenv interpreters, which the
    README names as a requirement of `make test` (a missing one fails, it is not skipped)."""

    def get(version: str) -> Path:
        found = interpreter(version)
        if found is None:
            pytest.fail(f"no working CPython {version} on PATH or under {PYENV_VERSIONS}")
        return found

    return get


@pytest.fixture(scope="session")
def app_python(
    tmp_path_factory: pytest.TempPathFactory, base_python: Callable[[str], Path]
) -> Callable[[str], Path]:
    """The application's interpreter for a version: a venv without pip (3.x), so that its
    sys.path holds only the standard library and what a test adds; 2.7 has no venv."""
    made: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version not in made:
            base = base_python(version)
            if version == "2.7":
                made[version] = base
            else:
                where = tmp_path_factory.mktemp(f"venv{version}")
                subprocess.run([str(base), "-m", "venv", "--without-pip", str(where)], check=True)
                made[version] = where / "bin" / "python"
        return made[version]

    return get


def _pip_install(target: Path, *requirements: str) -> None:
    """pip --target for this interpreter, as the builder does per target (pip's cache makes
    the second session fast)."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*command, "--no-input", "--target", str(target), *requirements],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        pytest.fail(f"pip could not install {requirements}:\n{done.stderr[-3000:]}")


@pytest.fixture(scope="session")
def ddtrace_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """ddtrace 4.16.0 installed for this interpreter, and its version."""
    site = tmp_path_factory.mktemp("ddtrace-site")
    _pip_install(site, f"ddtrace=={DDTRACE}")
    (site / "libinject-requires.txt").write_text(DDTRACE_REQUIRES)
    return site, DDTRACE


@pytest.fixture(scope="session")
def otel_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """opentelemetry-distro (the latest) with the OTLP/HTTP exporter, and the distro's version."""
    site = tmp_path_factory.mktemp("otel-site")
    _pip_install(site, "opentelemetry-distro", "opentelemetry-exporter-otlp-proto-http")
    (site / "libinject-requires.txt").write_text("")
    distro = next(site.glob("opentelemetry_distro-*.dist-info"))
    return site, distro.name[len("opentelemetry_distro-") : -len(".dist-info")]
