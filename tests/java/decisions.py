"""The launcher's checks driven with simulated facts, through apps/probe/DecisionProbe.java.

A case is the facts one JVM would give the launcher (`Facts`, by default those of an application
the tracer may load in) and the exact answer: `admitted ddtrace 1.56.0` or `refused <reason>`.
One probe JVM answers every case, so a table of cases costs one JVM start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from java.agents import VERSIONS, bundle_text
from java.jvms import Jvm, compile_java, run_program
from libinject.bundle.java.launcher import LAUNCHER_JAR

PROBE_CLASS = "dev.libinject.launcher.DecisionProbe"
DDTRACE = VERSIONS["ddtrace"]
SIZE = 33_503_793
BUNDLE = {
    "language": "java",
    "flavor": "ddtrace",
    "version": DDTRACE,
    "agent": "dd-java-agent.jar",
    "agent-size": str(SIZE),
    "agent-sha256": "ab" * 32,
    "java-min": "8",
}
LAUNCHER_OPTION = "-javaagent:/opt/libinject/java/libinject-launcher.jar"
ADMITTED = f"admitted ddtrace {DDTRACE}"


@dataclass(frozen=True)
class Facts:
    """What the launcher reads in a JVM: the properties, the environment, the command line
    (NUL-separated, as /proc/self/cmdline), bundle.txt and the agent jar."""

    spec: str | None = "17"
    command: str | None = "com.example.shop.Main --port 8080"
    tool_options: str | None = LAUNCHER_OPTION
    jdk_options: str | None = None
    command_line: str | None = "java\0-cp\0/app/classes\0com.example.shop.Main\0--port\08080"
    bundle: str | None = bundle_text(BUNDLE)
    size: int = SIZE
    premain: str | None = "datadog.trace.bootstrap.AgentPreCheck"
    jar_error: str | None = None

    def line(self) -> str:
        fields = (
            self.spec,
            self.command,
            self.tool_options,
            self.jdk_options,
            self.command_line,
            self.bundle,
            str(self.size),
            self.premain,
            self.jar_error,
        )
        return "\t".join("~" if value is None else _escaped(value) for value in fields)


def facts(**changes: Any) -> Facts:
    return replace(Facts(), **changes)


def bundle_of(**changes: str | None) -> str:
    """The default bundle.txt with values changed (None drops a key)."""
    return bundle_text({**BUNDLE, **changes})


def with_bundle(**changes: str | None) -> Facts:
    """The default facts with bundle.txt's values changed (None drops a key)."""
    return facts(bundle=bundle_of(**changes))


def _escaped(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\0", "\\0")
    )


def compile_probe(out: Path) -> Path:
    """The probe's class, compiled against the committed launcher jar."""
    source = Path(__file__).parent / "apps" / "probe" / "DecisionProbe.java"
    return compile_java([source], out, classpath=LAUNCHER_JAR)


def answers(jvm: Jvm, probe: Path, cases: Sequence[Facts]) -> list[str]:
    """The probe's answer to each case, run by `jvm` with the launcher jar's classes."""
    ran = run_program(
        [str(jvm.java), "-cp", f"{LAUNCHER_JAR}:{probe}", PROBE_CLASS],
        env={},
        stdin="".join(case.line() + "\n" for case in cases),
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) == len(cases), ran.stdout
    return lines


# The cases: (id, facts, the exact answer).
NOT_READY = "refused library not ready: "
INCOMPLETE = "refused library incomplete: "
JDK_TOOL = "refused a JDK tool, not an application: "
BUILD_TOOL = "refused a build tool, not an application: "
OWN_AGENT = "refused the application starts its own agent: "
OWN_DD = "-javaagent:/opt/dd/dd-java-agent.jar"

CASES: list[tuple[str, Facts, str]] = [
    ("admitted", facts(), ADMITTED),
    # 1. bundle.txt: present, complete, well-formed.
    ("no-bundle-txt", facts(bundle=None), NOT_READY + "no bundle.txt in /bundle"),
    (
        "empty-bundle-txt",
        facts(bundle=""),
        NOT_READY + "bundle.txt lacks language, flavor, version, agent, agent-size, java-min",
    ),
    (
        "lacks-two-keys",
        with_bundle(**{"agent-size": None, "java-min": None}),
        NOT_READY + "bundle.txt lacks agent-size, java-min",
    ),
    (
        "key-without-value",
        facts(bundle="java-min\n" + bundle_of(**{"java-min": None})),
        NOT_READY + "bundle.txt lacks java-min",
    ),
    (
        "comments-blank-lines-crlf",
        facts(bundle="# made by libinject\r\n\r\n" + bundle_of().replace("\n", "\r\n")),
        ADMITTED,
    ),
    (
        "other-language",
        with_bundle(language="python"),
        NOT_READY + "bundle.txt is for python, not java",
    ),
    (
        "agent-in-a-directory",
        with_bundle(agent="../dd-java-agent.jar"),
        NOT_READY + "bundle.txt names agent '../dd-java-agent.jar', not a file name",
    ),
    (
        "agent-dot-dot",
        with_bundle(agent=".."),
        NOT_READY + "bundle.txt names agent '..', not a file name",
    ),
    (
        "size-not-a-number",
        with_bundle(**{"agent-size": "32MB"}),
        NOT_READY + "bundle.txt has agent-size '32MB', not a number",
    ),
    (
        "size-negative",
        with_bundle(**{"agent-size": "-1"}),
        NOT_READY + "bundle.txt has agent-size '-1', not a number",
    ),
    (
        "java-min-not-a-number",
        with_bundle(**{"java-min": "eight"}),
        NOT_READY + "bundle.txt has java-min 'eight', not a number",
    ),
    (
        "java-min-huge",
        with_bundle(**{"java-min": "99999999999"}),
        NOT_READY + "bundle.txt has java-min '99999999999', not a Java version",
    ),
    # 2. The Java feature version against java-min ("1.8" is 8).
    (
        "java-8-agent-needs-11",
        facts(spec="1.8", bundle=bundle_of(**{"java-min": "11"})),
        f"refused Java 8 is older than ddtrace {DDTRACE} supports (Java 11 or later)",
    ),
    ("java-8-agent-needs-8", facts(spec="1.8"), ADMITTED),
    (
        "java-7",
        facts(spec="1.7"),
        f"refused Java 7 is older than ddtrace {DDTRACE} supports (Java 8 or later)",
    ),
    (
        "java-11-agent-needs-17",
        facts(spec="11", bundle=bundle_of(**{"java-min": "17"})),
        f"refused Java 11 is older than ddtrace {DDTRACE} supports (Java 17 or later)",
    ),
    (
        "java-25-agent-needs-17",
        facts(spec="25", bundle=bundle_of(**{"java-min": "17"})),
        ADMITTED,
    ),
    ("no-spec-version", facts(spec=None), "refused unknown Java version 'null'"),
    ("spec-version-garbage", facts(spec="duke"), "refused unknown Java version 'duke'"),
    # 3. The program: an application, not a JDK tool or a build tool.
    (
        "no-command",
        facts(command=None),
        "refused no main class (a JVM created through JNI, or java -version)",
    ),
    (
        "blank-command",
        facts(command="  "),
        "refused no main class (a JVM created through JNI, or java -version)",
    ),
    (
        "jcmd",
        facts(command="jdk.jcmd/sun.tools.jcmd.JCmd 4242 Thread.print"),
        JDK_TOOL + "jdk.jcmd/sun.tools.jcmd.JCmd",
    ),
    (
        "keytool",
        facts(command="java.base/sun.security.tools.keytool.Main -list"),
        JDK_TOOL + "java.base/sun.security.tools.keytool.Main",
    ),
    (
        "jshell-remote-agent",
        facts(command="jdk.jshell/jdk.jshell.execution.RemoteExecutionControl 40000"),
        JDK_TOOL + "jdk.jshell/jdk.jshell.execution.RemoteExecutionControl",
    ),
    (
        "java-8-jar",
        facts(spec="1.8", command="sun.tools.jar.Main -tf app.jar"),
        JDK_TOOL + "sun.tools.jar.Main",
    ),
    (
        "java-8-javac",
        facts(spec="1.8", command="com.sun.tools.javac.Main -d out A.java"),
        JDK_TOOL + "com.sun.tools.javac.Main",
    ),
    (
        "java-8-orbd",
        facts(spec="1.8", command="com.sun.corba.se.impl.activation.ORBD"),
        JDK_TOOL + "com.sun.corba.se.impl.activation.ORBD",
    ),
    (
        "java-8-jjs",
        facts(spec="1.8", command="jdk.nashorn.tools.Shell"),
        JDK_TOOL + "jdk.nashorn.tools.Shell",
    ),
    (
        "java-8-pack200",
        facts(spec="1.8", command="com.sun.java.util.jar.pack.Driver --pack"),
        JDK_TOOL + "com.sun.java.util.jar.pack.Driver",
    ),
    (
        "maven",
        facts(command="org.codehaus.plexus.classworlds.launcher.Launcher -v"),
        BUILD_TOOL + "org.codehaus.plexus.classworlds.launcher.Launcher",
    ),
    (
        "maven-wrapper-class",
        facts(command="org.apache.maven.wrapper.MavenWrapperMain package"),
        BUILD_TOOL + "org.apache.maven.wrapper.MavenWrapperMain",
    ),
    (
        "maven-surefire-fork",
        facts(command="org.apache.maven.surefire.booter.ForkedBooter /tmp/s 1"),
        BUILD_TOOL + "org.apache.maven.surefire.booter.ForkedBooter",
    ),
    (
        "mvnd",
        facts(command="org.mvndaemon.mvnd.daemon.DaemonWrapper"),
        BUILD_TOOL + "org.mvndaemon.mvnd.daemon.DaemonWrapper",
    ),
    (
        "gradle-wrapper",
        facts(command="org.gradle.wrapper.GradleWrapperMain build"),
        BUILD_TOOL + "org.gradle.wrapper.GradleWrapperMain",
    ),
    (
        "gradle-daemon",
        facts(command="org.gradle.launcher.daemon.bootstrap.GradleDaemon 8.10"),
        BUILD_TOOL + "org.gradle.launcher.daemon.bootstrap.GradleDaemon",
    ),
    (
        "gradle-worker",
        facts(
            command="worker.org.gradle.process.internal.worker.GradleWorkerMain 'Gradle Test Executor 1'"
        ),
        BUILD_TOOL + "worker.org.gradle.process.internal.worker.GradleWorkerMain",
    ),
    (
        "maven-wrapper-jar",
        facts(command="/src/.mvn/wrapper/maven-wrapper.jar package"),
        BUILD_TOOL + "/src/.mvn/wrapper/maven-wrapper.jar",
    ),
    (
        "gradle-wrapper-jar",
        facts(command="gradle/wrapper/gradle-wrapper.jar build"),
        BUILD_TOOL + "gradle/wrapper/gradle-wrapper.jar",
    ),
    ("app-jar", facts(command="/app/shop.jar --port 8080"), ADMITTED),
    ("app-module", facts(command="com.example.shop/com.example.shop.Main"), ADMITTED),
    ("default-package", facts(command="Main"), ADMITTED),
    ("glassfish-com-sun", facts(command="com.sun.enterprise.glassfish.bootstrap.ASMain"), ADMITTED),
    (
        "spring-boot-launcher",
        facts(command="org.springframework.boot.loader.launch.JarLauncher"),
        ADMITTED,
    ),
    ("sun-without-dot", facts(command="sunrise.App"), ADMITTED),
    ("jdk-without-dot", facts(command="jdkapp.Main"), ADMITTED),
    # 4. No tracer agent given by the application.
    (
        "own-dd-in-tool-options",
        facts(tool_options=f"{LAUNCHER_OPTION} {OWN_DD}"),
        OWN_AGENT + OWN_DD + " in JAVA_TOOL_OPTIONS",
    ),
    (
        "own-otel-first-with-arguments",
        facts(
            tool_options="-javaagent:/otel/opentelemetry-javaagent-all.jar=debug " + LAUNCHER_OPTION
        ),
        OWN_AGENT + "-javaagent:/otel/opentelemetry-javaagent-all.jar=debug in JAVA_TOOL_OPTIONS",
    ),
    (
        "own-agent-quoted",
        facts(tool_options=f'"{OWN_DD}"\t-Xmx1g'),
        OWN_AGENT + OWN_DD + " in JAVA_TOOL_OPTIONS",
    ),
    (
        "own-agent-any-case",
        facts(tool_options="-javaagent:/opt/DD-Java-Agent.JAR"),
        OWN_AGENT + "-javaagent:/opt/DD-Java-Agent.JAR in JAVA_TOOL_OPTIONS",
    ),
    (
        "own-agent-in-jdk-java-options",
        facts(jdk_options="-Xss1m -javaagent:/dd/dd-java-agent.jar"),
        OWN_AGENT + "-javaagent:/dd/dd-java-agent.jar in JDK_JAVA_OPTIONS",
    ),
    (
        "jdk-java-options-unread-by-java-8",
        facts(spec="1.8", jdk_options="-javaagent:/dd/dd-java-agent.jar"),
        ADMITTED,
    ),
    (
        "own-agent-on-command-line",
        facts(command_line="java\0-javaagent:/dd/dd-java-agent.jar\0-jar\0/app/shop.jar"),
        OWN_AGENT + "-javaagent:/dd/dd-java-agent.jar on the command line",
    ),
    (
        "own-agentpath",
        facts(command_line="java\0-agentpath:/opt/opentelemetry-javaagent.so\0Main"),
        OWN_AGENT + "-agentpath:/opt/opentelemetry-javaagent.so on the command line",
    ),
    (
        "other-agent",
        facts(tool_options=LAUNCHER_OPTION + " -javaagent:/opt/jacoco/jacocoagent.jar"),
        ADMITTED,
    ),
    (
        "tracer-directory-other-jar",
        facts(command_line="java\0-javaagent:/opt/dd-java-agent/other.jar\0Main"),
        ADMITTED,
    ),
    (
        "tracer-jar-on-class-path",
        facts(command_line="java\0-cp\0/lib/dd-java-agent.jar:/app\0Main"),
        ADMITTED,
    ),
    ("no-proc", facts(command_line=None), ADMITTED),
    # 5. The agent jar: there, of bundle.txt's size, a jar with a Premain-Class.
    ("agent-missing", facts(size=-1), INCOMPLETE + "dd-java-agent.jar is missing"),
    (
        "agent-truncated",
        facts(size=SIZE - 1),
        INCOMPLETE + f"dd-java-agent.jar has {SIZE - 1} bytes, bundle.txt says {SIZE}",
    ),
    (
        "agent-not-a-jar",
        facts(jar_error="java.util.zip.ZipException: zip END header not found"),
        INCOMPLETE
        + "dd-java-agent.jar is not a readable jar (java.util.zip.ZipException: zip END header not found)",
    ),
    (
        "agent-without-premain",
        facts(premain=None),
        INCOMPLETE + "dd-java-agent.jar has no Premain-Class",
    ),
    (
        "agent-blank-premain",
        facts(premain=" "),
        INCOMPLETE + "dd-java-agent.jar has no Premain-Class",
    ),
    # The first failing check answers.
    (
        "old-java-before-tool",
        facts(spec="1.7", command="sun.tools.jar.Main"),
        f"refused Java 7 is older than ddtrace {DDTRACE} supports (Java 8 or later)",
    ),
    (
        "tool-before-own-agent",
        facts(
            command="jdk.jcmd/sun.tools.jcmd.JCmd", tool_options="-javaagent:/dd/dd-java-agent.jar"
        ),
        JDK_TOOL + "jdk.jcmd/sun.tools.jcmd.JCmd",
    ),
    (
        "own-agent-before-missing-jar",
        facts(tool_options="-javaagent:/dd/dd-java-agent.jar", size=-1),
        OWN_AGENT + "-javaagent:/dd/dd-java-agent.jar in JAVA_TOOL_OPTIONS",
    ),
]
