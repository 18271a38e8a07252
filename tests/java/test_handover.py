"""The handover in real JVMs (Java 17 and Java 25): the launcher starts the bundle's agent as the
JVM would have, with the launcher's own Instrumentation and arguments; an agent that fails to
start leaves the application running. Then the real agents, dd-java-agent and the OpenTelemetry
Java agent from Maven Central: each starts (its global tracer is live in the application), and
an application that starts its own agent ends with exactly one."""

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
from java.jvms import HELLO, Jvm, app_ran, injected

OTEL_VERSION_LINE = f"opentelemetry-javaagent - version: {VERSIONS['opentelemetry']}"
DD_TWICE = "dd-java-agent is being initialized more than once"


def loaded(what: str, root: Path) -> re.Pattern[str]:
    return re.compile(re.escape(f"libinject: loaded {what} from {root}") + r" \[pid \d+\]")


def test_stub_agent_gets_the_launchers_instrumentation(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory
) -> None:
    """The agent's premain runs before the application's main, loaded by the system class
    loader, with every capability the launcher's manifest asks for (the Instrumentation is the
    launcher's), and no arguments when the launcher got none; the line names what was loaded."""
    launcher = stub_bundle()
    ran = app_ran(jdk.hello(classes, injected(launcher)))
    assert ran.stdout.splitlines()[:2] == [
        f"{STARTED}: arguments null, retransform true, redefine true, native prefix true, "
        "system loader true",
        HELLO,
    ]
    assert loaded(STUB, launcher.parent).fullmatch(ran.debug_line)


def test_arguments_pass_through(jdk: Jvm, classes: Path, stub_bundle: BundleFactory) -> None:
    """What follows '=' in the launcher's -javaagent is the agent's argument string."""
    launcher = stub_bundle()
    env = injected(launcher, JAVA_TOOL_OPTIONS=f"-javaagent:{launcher}=service=shop,debug")
    ran = app_ran(jdk.hello(classes, env))
    assert ran.lines(STARTED)[0].startswith(f"{STARTED}: arguments service=shop,debug, ")


def test_premain_without_instrumentation(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory
) -> None:
    """An agent with only premain(String) is started through it, as the JVM would."""
    launcher = stub_bundle(stub="one-argument")
    ran = app_ran(jdk.hello(classes, injected(launcher)))
    assert ran.lines(STARTED) == [f"{STARTED} without instrumentation: arguments null"]
    assert loaded(STUB, launcher.parent).fullmatch(ran.debug_line)


@pytest.mark.parametrize(
    ("stub", "error"),
    [
        ("failing", "java.lang.IllegalStateException: the stub agent fails on purpose"),
        ("missing-class", "java.lang.ClassNotFoundException: stub.NoSuchAgent"),
    ],
)
def test_agent_that_fails_to_start(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory, stub: str, error: str
) -> None:
    """An agent whose premain throws, or whose Premain-Class is not in its jar: the JVM would
    abort; through the launcher the application runs and the line says what failed."""
    launcher = stub_bundle(stub=stub)
    ran = app_ran(jdk.hello(classes, injected(launcher)))
    line = (
        f"libinject: tracer not loaded: failed to start {STUB} from {launcher.parent}: {error} "
        "(the application runs without it)"
    )
    assert re.fullmatch(re.escape(line) + r" \[pid \d+\]", ran.debug_line), ran.debug_line


def test_second_launcher_stands_down(jdk: Jvm, classes: Path, stub_bundle: BundleFactory) -> None:
    """Two launchers in one JVM (two bundles, or one named twice): the first starts its agent,
    the second says so and starts none."""
    first, second = stub_bundle(), stub_bundle()
    env = injected(first, JAVA_TOOL_OPTIONS=f"-javaagent:{first} -javaagent:{second}")
    ran = app_ran(jdk.hello(classes, env))
    assert len(ran.lines(STARTED)) == 1
    assert len(ran.debug_lines) == 2
    assert loaded(STUB, first.parent).fullmatch(ran.debug_lines[0])
    assert ran.debug_lines[1].startswith(
        "libinject: tracer not loaded: a libinject launcher already ran in this JVM (one tracer)"
    )


# The real agents: a network test (Maven Central on a cold cache), through the agent_jars fixture.


@pytest.fixture(scope="module")
def real_bundles(
    agent_jars: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A bundle directory per flavor holding the real agent: flavor -> its launcher jar."""
    return {
        flavor: make_bundle(
            tmp_path_factory.mktemp(flavor),
            agent=jar,
            flavor=flavor,
            version=VERSIONS[flavor],
            agent_name=AGENT_FILES[flavor],
        )
        for flavor, jar in agent_jars.items()
    }


@pytest.mark.parametrize("flavor", ["ddtrace", "opentelemetry"])
def test_real_agent_starts(
    jdk: Jvm, classes: Path, real_bundles: dict[str, Path], flavor: str
) -> None:
    """The real agent starts through the launcher: the application finds that agent's live
    global tracer (dd-java-agent's CoreTracer, the OpenTelemetry SDK's tracer provider) and no
    other agent's."""
    launcher = real_bundles[flavor]
    ran = app_ran(jdk.hello(classes, injected(launcher)))
    assert ran.lines("tracer ") == [TRACERS[flavor]]
    assert loaded(f"{flavor} {VERSIONS[flavor]}", launcher.parent).fullmatch(ran.debug_line)


@pytest.mark.parametrize("own", ["ddtrace", "opentelemetry"])
@pytest.mark.parametrize("flavor", ["ddtrace", "opentelemetry"])
def test_application_with_its_own_real_agent(
    jdk: Jvm,
    classes: Path,
    real_bundles: dict[str, Path],
    agent_jars: dict[str, Path],
    tmp_path: Path,
    flavor: str,
    own: str,
) -> None:
    """An application that starts a real agent itself on its command line (the same tracer as
    the bundle's, or the other one) ends with exactly one agent, its own: the launcher stands
    down naming it, only that agent's global tracer is live, and it started once (no
    dd-java-agent warning about a second start, one OpenTelemetry version line)."""
    own_jar = tmp_path / AGENT_FILES[own]
    shutil.copyfile(agent_jars[own], own_jar)
    option = f"-javaagent:{own_jar}"
    ran = app_ran(jdk.hello(classes, injected(real_bundles[flavor]), option))
    assert ran.lines("tracer ") == [TRACERS[own]]
    assert DD_TWICE not in ran.stderr
    assert ran.stderr.count(OTEL_VERSION_LINE) == (own == "opentelemetry")
    assert ran.debug_line.startswith(
        f"libinject: tracer not loaded: the application starts its own agent: {option} "
        "on the command line"
    )
