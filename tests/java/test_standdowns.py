"""Each of the launcher's stand-downs in real JVMs (Java 17 and Java 25): the JVM starts the
application normally, no agent starts, and with LIBINJECT_DEBUG one stderr line says why.

The bundles hold a stub agent (apps/stub) that prints a line when it starts, so "no agent
started" is seen, not assumed; the JDK tools are the runtime's own programs and Maven is the
machine's `mvn`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from java.agents import STARTED, STUB, BundleFactory
from java.jvms import HELLO, Jvm, Ran, injected, run_program
from libinject.bundle.java.launcher import JAR_NAME, LAUNCHER_JAR


def not_loaded(reason: str) -> re.Pattern[str]:
    """The launcher's stand-down line for `reason`, any pid."""
    line = f"libinject: tracer not loaded: {reason} (the application runs without it)"
    return re.compile(re.escape(line) + r" \[pid \d+\]")


def assert_stood_down(ran: Ran, reason: str) -> None:
    """The application ran normally, no agent started, and the one line says `reason`."""
    assert ran.returncode == 0, ran.stderr
    assert ran.lines(HELLO) == [HELLO]
    assert ran.lines(STARTED) == []
    assert not_loaded(reason).fullmatch(ran.debug_line), ran.debug_line


def test_volume_with_the_launcher_alone(jdk: Jvm, classes: Path, tmp_path: Path) -> None:
    """The CSI plugin's "library not ready" volume holds only the launcher: the JVM starts and
    the line names the directory without bundle.txt."""
    shutil.copyfile(LAUNCHER_JAR, tmp_path / JAR_NAME)
    ran = jdk.hello(classes, injected(tmp_path / JAR_NAME))
    assert_stood_down(ran, f"library not ready: no bundle.txt in {tmp_path}")


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ({"java-min": None}, "library not ready: bundle.txt lacks java-min"),
        (
            {"agent": None, "agent-size": None},
            "library not ready: bundle.txt lacks agent, agent-size",
        ),
        ({"language": "python"}, "library not ready: bundle.txt is for python, not java"),
    ],
    ids=["no-java-min", "no-agent", "python-bundle"],
)
def test_incomplete_bundle_txt(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory, missing: dict[str, str | None], reason: str
) -> None:
    """A bundle.txt without a key the launcher needs (or another language's) is not ready."""
    ran = jdk.hello(classes, injected(stub_bundle(overrides=missing)))
    assert_stood_down(ran, reason)


def test_java_older_than_the_agent_supports(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory
) -> None:
    """java-min above this JVM's feature version (java.specification.version) stands down."""
    ran = jdk.hello(classes, injected(stub_bundle(java_min=jdk.feature + 1)))
    reason = f"Java {jdk.feature} is older than {STUB} supports (Java {jdk.feature + 1} or later)"
    assert_stood_down(ran, reason)


def test_java_min_equal_to_this_java_loads(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory
) -> None:
    """The same bundle with java-min equal to this JVM's version loads its agent."""
    ran = jdk.hello(classes, injected(stub_bundle(java_min=jdk.feature)))
    assert ran.lines(STARTED) != []
    assert ran.debug_line.startswith(f"libinject: loaded {STUB} from ")


def _tools(jdk: Jvm) -> list[str]:
    return sorted(p.name for p in jdk.java.parent.iterdir() if p.name != "java")


def test_every_jdk_tool(jdk: Jvm, stub_bundle: BundleFactory) -> None:
    """Every program in the JDK's bin/ besides `java` (jcmd, jps, keytool, jar, javac, jshell,
    jwebserver...) reads JAVA_TOOL_OPTIONS too, and runs its main class from a JDK module: each
    stands down naming it, and the agent never starts. Each is asked for its help (jconsole
    waits for a display whatever it is asked: killed after 8 s, the launcher spoke at start)."""
    env = injected(stub_bundle())
    assert len(_tools(jdk)) >= 25
    for tool in _tools(jdk):
        ran = jdk.run("--help", env=env, tool=tool, timeout=8)
        lines = ran.debug_lines
        assert lines, f"{tool}: no libinject line:\n{ran.stderr[-2000:]}"
        for line in lines:  # jshell starts a second JVM, its remote agent
            assert re.fullmatch(
                r"libinject: tracer not loaded: a JDK tool, not an application: "
                r"(java|jdk)\.[a-z.]+/[\w.$]+ \(the application runs without it\) \[pid \d+\]",
                line,
            ), f"{tool}: {line}"
        assert STARTED not in ran.stdout + ran.stderr, tool


def test_java_version_has_no_main_class(jdk: Jvm, stub_bundle: BundleFactory) -> None:
    """`java -version` names no main class: the launcher stands down."""
    ran = jdk.run("-version", env=injected(stub_bundle()))
    assert ran.returncode == 0
    assert STARTED not in ran.stdout
    assert not_loaded("no main class (a JVM created through JNI, or java -version)").fullmatch(
        ran.debug_line
    )


def test_maven(jdk: Jvm, stub_bundle: BundleFactory) -> None:
    """Maven, run by this JDK, is a build tool: its classworlds launcher stands down, and
    Maven answers as usual."""
    mvn = shutil.which("mvn")
    assert mvn is not None, "the machine's Maven (mvn) is needed"
    java_home = str(jdk.java.parent.parent)
    ran = run_program([mvn, "--version"], env={"JAVA_HOME": java_home, **injected(stub_bundle())})
    assert ran.returncode == 0, ran.stderr
    assert "Apache Maven" in ran.stdout
    assert STARTED not in ran.stdout
    reason = "a build tool, not an application: org.codehaus.plexus.classworlds.launcher.Launcher"
    assert not_loaded(reason).fullmatch(ran.debug_line)


@pytest.mark.parametrize(
    "where",
    ["JAVA_TOOL_OPTIONS after", "JAVA_TOOL_OPTIONS before", "JDK_JAVA_OPTIONS", "command line"],
)
@pytest.mark.parametrize("name", ["dd-java-agent.jar", "opentelemetry-javaagent-all.jar"])
def test_application_gives_its_own_agent(
    jdk: Jvm,
    classes: Path,
    stub_bundle: BundleFactory,
    stub_jars: dict[str, Path],
    tmp_path: Path,
    where: str,
    name: str,
) -> None:
    """An agent the application starts itself, named like a tracer's jar, wherever it is given:
    the launcher stands down naming it and where, and that agent alone starts (once)."""
    own = tmp_path / "own" / name
    own.parent.mkdir()
    shutil.copyfile(stub_jars["stub"], own)
    launcher, option = f"-javaagent:{stub_bundle()}", f"-javaagent:{own}"
    env = {"LIBINJECT_DEBUG": "true", "JAVA_TOOL_OPTIONS": launcher}
    command_line: list[str] = []
    if where == "JAVA_TOOL_OPTIONS after":
        env["JAVA_TOOL_OPTIONS"] = f"{launcher} {option}"
    elif where == "JAVA_TOOL_OPTIONS before":
        env["JAVA_TOOL_OPTIONS"] = f"{option} {launcher}"
    elif where == "JDK_JAVA_OPTIONS":
        env["JDK_JAVA_OPTIONS"] = option
    else:
        command_line = [option]
    ran = jdk.hello(classes, env, *command_line)
    assert ran.returncode == 0, ran.stderr
    assert len(ran.lines(STARTED)) == 1
    place = {
        "JAVA_TOOL_OPTIONS after": "in JAVA_TOOL_OPTIONS",
        "JAVA_TOOL_OPTIONS before": "in JAVA_TOOL_OPTIONS",
        "JDK_JAVA_OPTIONS": "in JDK_JAVA_OPTIONS",
        "command line": "on the command line",
    }[where]
    reason = f"the application starts its own agent: {option} {place}"
    assert not_loaded(reason).fullmatch(ran.debug_line)


@pytest.mark.parametrize("damage", ["missing", "truncated", "grown", "not-a-jar"])
def test_library_incomplete(
    jdk: Jvm, classes: Path, stub_bundle: BundleFactory, damage: str
) -> None:
    """An agent jar that is not the one bundle.txt describes (absent, another size, or not a
    jar at all at the right size) stands down before anything is loaded from it."""
    launcher = stub_bundle()
    agent = launcher.parent / "stub-agent.jar"
    size = agent.stat().st_size
    reason = {
        "missing": "stub-agent.jar is missing",
        "truncated": f"stub-agent.jar has {size - 1} bytes, bundle.txt says {size}",
        "grown": f"stub-agent.jar has {size + 1} bytes, bundle.txt says {size}",
        "not-a-jar": "stub-agent.jar is not a readable jar (java.util.zip.ZipException: ",
    }[damage]
    if damage == "missing":
        agent.unlink()
    elif damage == "truncated":
        os.truncate(agent, size - 1)
    elif damage == "grown":
        agent.write_bytes(agent.read_bytes() + b"\0")
    else:
        agent.write_bytes(b"\0" * size)
    ran = jdk.hello(classes, injected(launcher))
    assert ran.returncode == 0, ran.stderr
    assert ran.lines(HELLO) == [HELLO]
    assert ran.lines(STARTED) == []
    assert f"tracer not loaded: library incomplete: {reason}" in ran.debug_line


def test_jar_without_premain_class(jdk: Jvm, classes: Path, stub_bundle: BundleFactory) -> None:
    """A jar of the right size whose manifest names no Premain-Class is incomplete."""
    ran = jdk.hello(classes, injected(stub_bundle(stub="no-premain")))
    assert_stood_down(ran, "library incomplete: stub-agent.jar has no Premain-Class")


@pytest.mark.parametrize("value", ["", "false", "0", "off", "maybe"])
def test_silent_without_debug(
    jdk: Jvm, classes: Path, tmp_path: Path, stub_bundle: BundleFactory, value: str
) -> None:
    """Without LIBINJECT_DEBUG set to true/1/yes/on the launcher writes nothing: neither when it
    stands down nor when it loads the agent."""
    shutil.copyfile(LAUNCHER_JAR, tmp_path / JAR_NAME)
    for launcher in (tmp_path / JAR_NAME, stub_bundle()):
        ran = jdk.hello(classes, injected(launcher, LIBINJECT_DEBUG=value))
        assert ran.returncode == 0
        assert ran.lines(HELLO) == [HELLO]
        assert ran.debug_lines == []
        assert "tracer" not in ran.stderr
