"""Fixtures for the launcher's tests: the JVMs, the test programs compiled for Java 8, stub agent
jars, the real agents from Maven Central, and bundle directories holding any of them.

Only fixtures live here (test modules cannot import a conftest reliably: tests/ has several).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from java import jvms
from java.agents import COORDINATES, STUB_VERSION, BundleFactory, make_bundle, maven_agent
from java.decisions import compile_probe
from java.jvms import Jvm, compile_java
from libinject.bundle.java.launcher import archive

APPS = Path(__file__).parent / "apps"
# The stub agent jars: name -> the Premain-Class their manifest names (None: no such line).
STUBS: dict[str, str | None] = {
    "stub": "stub.StubAgent",
    "one-argument": "stub.OneArgumentAgent",
    "failing": "stub.FailingAgent",
    "missing-class": "stub.NoSuchAgent",
    "no-premain": None,
}


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
    sources = [*APPS.glob("*.java"), *(APPS / "stub").glob("*.java")]
    return compile_java(sorted(sources), tmp_path_factory.mktemp("classes"))


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The class directory of DecisionProbe, which calls the launcher's checks."""
    return compile_probe(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="session")
def stub_jars(classes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A jar per entry of STUBS: the stub classes under a manifest naming that Premain-Class."""
    entries = {
        path.relative_to(classes).as_posix(): path.read_bytes()
        for path in sorted((classes / "stub").glob("*.class"))
    }
    out = tmp_path_factory.mktemp("stubs")
    jars = {}
    for name, premain in STUBS.items():
        manifest = "Manifest-Version: 1.0\r\n"
        manifest += f"Premain-Class: {premain}\r\n" if premain else ""
        jars[name] = out / f"{name}.jar"
        jars[name].write_bytes(archive(entries, manifest + "\r\n"))
    return jars


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
