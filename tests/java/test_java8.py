"""The launcher on Java 8, the oldest JVM it claims: Debian sid's OpenJDK 8 (jvms.java8) loads
its class files (major version 52), stands down, and hands over to a stub and to the real
agents. A network test: Debian sid, and Maven Central for the real agents, on a cold cache."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from java.agents import (
    AGENT_FILES,
    STARTED,
    STUB,
    TRACERS,
    VERSIONS,
    BundleFactory,
    make_bundle,
)
from java.decisions import CASES, answers
from java.jvms import Jvm, app_ran, injected
from libinject.bundle.java.launcher import JAR_NAME, LAUNCHER_JAR


def test_it_is_java_8(java8: Jvm) -> None:
    """The runtime really is Java 8 (java -version says 1.8.0)."""
    ran = java8.run("-version", env={})
    assert ran.returncode == 0, ran.stderr
    assert re.search(r'version "1\.8\.0_\d+"', ran.stderr), ran.stderr


def test_not_ready_volume(java8: Jvm, classes: Path, tmp_path: Path) -> None:
    """The launcher alone in its directory: Java 8 loads it, it stands down, the app runs."""
    shutil.copyfile(LAUNCHER_JAR, tmp_path / JAR_NAME)
    ran = app_ran(java8.hello(classes, injected(tmp_path / JAR_NAME)))
    assert ran.debug_line.startswith(
        f"libinject: tracer not loaded: library not ready: no bundle.txt in {tmp_path} "
    )


def test_agent_needs_a_newer_java(java8: Jvm, classes: Path, stub_bundle: BundleFactory) -> None:
    """java-min 11 on Java 8 ("1.8" read as 8): the launcher stands down, no agent starts."""
    ran = app_ran(java8.hello(classes, injected(stub_bundle(java_min=11))))
    assert ran.lines(STARTED) == []
    assert ran.debug_line.startswith(
        f"libinject: tracer not loaded: Java 8 is older than {STUB} supports (Java 11 or later)"
    )


def test_java_8_tool(java8: Jvm, stub_bundle: BundleFactory) -> None:
    """Java 8's tools name a bare class (no module): keytool is still a JDK tool."""
    ran = java8.run("-help", env=injected(stub_bundle()), tool="keytool")
    assert STARTED not in ran.stdout
    assert ran.debug_line.startswith(
        "libinject: tracer not loaded: a JDK tool, not an application: "
        "sun.security.tools.keytool.Main "
    )


def test_stub_handover(java8: Jvm, classes: Path, stub_bundle: BundleFactory) -> None:
    """The handover on Java 8: the stub agent starts with the launcher's capabilities."""
    launcher = stub_bundle()
    ran = app_ran(java8.hello(classes, injected(launcher)))
    assert ran.lines(STARTED) == [
        f"{STARTED}: arguments null, retransform true, redefine true, native prefix true, "
        "system loader true"
    ]
    assert ran.debug_line.startswith(f"libinject: loaded {STUB} from ")


@pytest.mark.parametrize("flavor", ["ddtrace", "opentelemetry"])
def test_real_agent_on_java_8(
    java8: Jvm,
    classes: Path,
    agent_jars: dict[str, Path],
    tmp_path: Path,
    flavor: str,
) -> None:
    """Both real agents support Java 8 (java-min 8): each starts there through the launcher."""
    launcher = make_bundle(
        tmp_path,
        agent=agent_jars[flavor],
        flavor=flavor,
        version=VERSIONS[flavor],
        agent_name=AGENT_FILES[flavor],
    )
    ran = app_ran(java8.hello(classes, injected(launcher)))
    assert ran.lines("tracer ") == [TRACERS[flavor]]
    assert ran.debug_line.startswith(f"libinject: loaded {flavor} {VERSIONS[flavor]} from ")


def test_decisions_on_java_8(java8: Jvm, probe: Path) -> None:
    """Java 8's class library gives every simulated case the same answer as Java 17's."""
    assert answers(java8, probe, [facts for _, facts, _ in CASES]) == [
        expected for _, _, expected in CASES
    ]
