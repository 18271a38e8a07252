"""Fixtures for the launcher's tests: the JVMs, the test programs compiled for Java 8, stub agent
jars, the real agents from Maven Central, and bundle directories holding any of them.

Only fixtures live here (test modules cannot import a conftest reliably: tests/ has several).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from java import jvms
from java.agents import (
    COORDINATES,
    STUB_VERSION,
    BundleFactory,
    compile_apps,
    make_bundle,
    make_stub_jars,
    maven_agent,
)
from java.decisions import compile_probe
from java.jvms import Jvm


@pytest.fixture(params=jvms.installed(), ids=str)
def jdk(request: pytest.FixtureRequest) -> Jvm:
    """Java 17 and Java 25, in turn."""
    jvm: Jvm = request.param
    return jvm


@pytest.fixture(scope="session")
def java8() -> Jvm:
    """Debian sid's OpenJDK 8, unpacked and made runnable on first use."""
    return jvms.java8()


@pytest.fixture(scope="session")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hello (the application) and the stub agents, compiled for Java 8."""
    return compile_apps(tmp_path_factory.mktemp("classes"))


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The class directory of DecisionProbe, which calls the launcher's checks."""
    return compile_probe(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="session")
def stub_jars(classes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A jar per entry of agents.STUBS."""
    return make_stub_jars(classes, tmp_path_factory.mktemp("stubs"))


@pytest.fixture(scope="session")
def agent_jars() -> dict[str, Path]:
    """The real dd-java-agent and OpenTelemetry agent, from Maven Central (cached)."""
    return {flavor: maven_agent(flavor) for flavor in COORDINATES}


@pytest.fixture
def stub_bundle(tmp_path: Path, stub_jars: dict[str, Path]) -> BundleFactory:
    """Makes a bundle directory holding a stub agent (`stub="failing"`...) as stub-agent.jar;
    keyword arguments go to make_bundle. Returns the launcher jar's path."""
    made = 0

    def make(*, stub: str = "stub", **options: object) -> Path:
        nonlocal made
        made += 1
        return make_bundle(
            tmp_path / f"bundle-{made}",
            agent=stub_jars[stub],
            flavor="stub",
            version=STUB_VERSION,
            agent_name="stub-agent.jar",
            **options,  # type: ignore[arg-type]
        )

    return make
