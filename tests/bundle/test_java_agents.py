"""The facts libinject states about each Java agent, read from the real jars: the oldest Java a
bundle's manifest claims (java-min, which the launcher stands down below) is what the agent
itself can start on."""

from __future__ import annotations

import hashlib
import re
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from cluster.libraries import JAVA_LOCKS, JAVA_VERSIONS, LIBINJECT
from libinject.api.types import Flavor
from libinject.bundle.java import cache
from libinject.bundle.java.agents import AGENTS
from libinject.bundle.java.locks import parse
from tools.gobuild import cache_root

pytestmark = pytest.mark.network  # Maven Central's checksums (and the jars on a cold cache)


@pytest.fixture(scope="module")
def agent_jar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each flavor's agent jar as `libinject lock java` fetched and checked it against Maven
    Central's checksums, with the committed lock's bytes."""
    jars = {}
    for flavor, version in JAVA_VERSIONS.items():
        locks, cached = tmp_path_factory.mktemp("locks"), cache_root() / "java"
        command = [str(LIBINJECT), "lock", "java", f"--flavor={flavor}", f"--version={version}"]
        subprocess.run([*command, f"--locks={locks}", f"--cache={cached}"], check=True)
        jar = cache.jar_path(cached, AGENTS[Flavor(flavor)], version)
        lock = parse((JAVA_LOCKS / f"{flavor}-{version}.lock").read_text())
        assert hashlib.sha256(jar.read_bytes()).hexdigest() == lock.sha256
        jars[flavor] = jar
    return jars


FIRST_CLASS_FILE_VERSION = 44  # a class file's major version is 44 + the Java feature version


def _premain(jar: Path) -> tuple[str, int]:
    """The agent's Premain-Class and the Java feature version its class file needs."""
    with zipfile.ZipFile(jar) as archive:
        manifest = archive.read("META-INF/MANIFEST.MF").decode()
        found = re.search(r"^Premain-Class: (\S+)", manifest, re.MULTILINE)
        assert found is not None, manifest
        name = found.group(1)
        header = archive.read(name.replace(".", "/") + ".class")[:8]
    magic, _, major = struct.unpack(">IHH", header)
    assert magic == 0xCAFEBABE
    return name, major - FIRST_CLASS_FILE_VERSION


@pytest.mark.parametrize("flavor", sorted(JAVA_VERSIONS))
def test_the_agent_starts_on_the_oldest_java_the_bundle_claims(
    flavor: str, agent_jar: dict[str, Path]
) -> None:
    """A JVM of java-min can load the class the agent starts from (its class file is no newer),
    so the launcher's check lets through only JVMs the agent can start on."""
    _, needs = _premain(agent_jar[flavor])
    assert needs <= AGENTS[Flavor(flavor)].java_min


def test_dd_java_agent_states_the_same_minimum_itself(agent_jar: dict[str, Path]) -> None:
    """dd-java-agent checks the JVM first in its own pre-check class; its minimum is ours."""
    jar = agent_jar["ddtrace"]
    name, _ = _premain(jar)
    shown = subprocess.run(
        ["javap", "-constants", "-cp", str(jar), name], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"MIN_JAVA_VERSION = (\d+);", shown)
    assert found is not None, shown
    assert int(found.group(1)) == AGENTS[Flavor.DDTRACE].java_min


def test_the_opentelemetry_agent_needs_exactly_the_java_the_bundle_claims(
    agent_jar: dict[str, Path],
) -> None:
    """The OpenTelemetry agent has no pre-check: its entry class is built for its minimum, so a
    lower java-min would let a JVM through that fails to load it."""
    assert _premain(agent_jar["opentelemetry"])[1] == AGENTS[Flavor.OPENTELEMETRY].java_min
