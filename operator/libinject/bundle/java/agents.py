"""The Java agent of each flavor: its Maven coordinates and what a bundle says of it.

Pure data. The launcher reads the agent's file name and the oldest Java it supports from the
bundle's manifest, so the facts below are what stands a JVM down before the agent could fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from libinject.api.types import Flavor

CENTRAL = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class Agent:
    group: str
    artifact: str
    jar: str  # its file name in the bundle
    java_min: int  # the oldest Java feature version the agent supports

    def coordinates(self, version: str) -> str:
        return f"{self.group}:{self.artifact}:{version}"

    def url(self, version: str) -> str:
        """The jar on Maven Central, at its place in the repository layout every client reads."""
        group = self.group.replace(".", "/")
        return f"{CENTRAL}/{group}/{self.artifact}/{version}/{self.artifact}-{version}.jar"


AGENTS: dict[Flavor, Agent] = {
    # dd-trace-java checks the JVM itself before anything else: its Premain-Class is
    # AgentPreCheck, whose MIN_JAVA_VERSION is 8 (tests/bundle/test_java_agents.py reads it).
    Flavor.DDTRACE: Agent("com.datadoghq", "dd-java-agent", "dd-java-agent.jar", java_min=8),
    # The OpenTelemetry Java agent supports Java 8 and later; its Premain-Class is Java 8
    # bytecode (class file major version 52), which the same test reads.
    Flavor.OPENTELEMETRY: Agent(
        "io.opentelemetry.javaagent",
        "opentelemetry-javaagent",
        "opentelemetry-javaagent.jar",
        java_min=8,
    ),
}
