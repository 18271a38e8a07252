"""The agents the launcher's tests hand over to, and the bundle directories that hold them.

The real agents come from Maven Central by their coordinates, at the versions
images/java/versions lists, fetched by `mvn dependency:get` (checksums enforced) into the
Maven repository <cache root>/maven/. A bundle directory is the layout a Java library image
holds: the launcher jar, bundle.txt and the agent jar.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from cluster.build import elapsed, locked, say
from java.jvms import compile_java
from libinject.bundle.java.launcher import JAR_NAME, LAUNCHER_JAR, archive
from tools.gobuild import BuildError, cache_root

VERSIONS_FILE = Path(__file__).parents[2] / "images" / "java" / "versions"
VERSIONS = dict(
    line.split()
    for line in VERSIONS_FILE.read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
COORDINATES = {
    "ddtrace": ("com.datadoghq", "dd-java-agent"),
    "opentelemetry": ("io.opentelemetry.javaagent", "opentelemetry-javaagent"),
}
AGENT_FILES = {flavor: f"{artifact}.jar" for flavor, (_, artifact) in COORDINATES.items()}
STUB_VERSION = "1.0"  # the stub agents' bundles (tests/java/apps/stub; not a library release)
STUB = f"stub {STUB_VERSION}"  # how the launcher names a stub bundle
STARTED = "stub agent started"  # how a stub agent's line starts
# Each real agent's global tracer as apps/Hello reports it once that agent started.
TRACERS = {
    "ddtrace": "tracer ddtrace datadog.trace.agent.core.CoreTracer",
    "opentelemetry": "tracer opentelemetry "
    "io.opentelemetry.sdk.OpenTelemetrySdk$ObfuscatedTracerProvider",
}

APPS = Path(__file__).parent / "apps"
# The stub agent jars: name -> the Premain-Class their manifest names (None: no such line).
STUBS: dict[str, str | None] = {
    "stub": "stub.StubAgent",
    "one-argument": "stub.OneArgumentAgent",
    "failing": "stub.FailingAgent",
    "missing-class": "stub.NoSuchAgent",
    "no-premain": None,
}

BundleFactory = Callable[..., Path]  # makes a bundle directory, returns its launcher's path


def maven_agent(flavor: str) -> Path:
    """The real agent jar of `flavor` at its listed version, downloaded on first use."""
    group, artifact = COORDINATES[flavor]
    version = VERSIONS[flavor]
    repository = cache_root() / "maven"
    jar = repository / Path(*group.split(".")) / artifact / version / f"{artifact}-{version}.jar"
    if not jar.is_file():
        with locked(repository / ".lock"):
            if not jar.is_file():
                _download(f"{group}:{artifact}:{version}", repository)
    return jar


def _download(coordinates: str, repository: Path) -> None:
    started = time.monotonic()
    say(f"downloading {coordinates} from Maven Central into {repository}")
    command = [
        "mvn",
        "--batch-mode",
        "--quiet",
        "--strict-checksums",  # a jar whose published checksum does not match fails
        "dependency:get",
        f"-Dartifact={coordinates}",
        "-Dtransitive=false",
        f"-Dmaven.repo.local={repository}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"mvn dependency:get {coordinates} failed:\n{done.stdout}{done.stderr}")
    say(f"downloaded {coordinates} in {elapsed(started)}")


def bundle_text(values: Mapping[str, str | None]) -> str:
    """bundle.txt's `key value` lines; a key whose value is None is left out."""
    return "".join(f"{key} {value}\n" for key, value in values.items() if value is not None)


def make_bundle(
    root: Path,
    *,
    agent: Path,
    flavor: str,
    version: str,
    agent_name: str,
    java_min: int = 8,
    overrides: Mapping[str, str | None] | None = None,
) -> Path:
    """The layout a Java library image holds, in `root`: the launcher, the agent jar copied as
    `agent_name` and a complete bundle.txt, whose lines `overrides` replaces (None drops one).
    Returns the launcher jar's path, what -javaagent names."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LAUNCHER_JAR, root / JAR_NAME)
    shutil.copyfile(agent, root / agent_name)
    data = (root / agent_name).read_bytes()
    values: dict[str, str | None] = {
        "language": "java",
        "flavor": flavor,
        "version": version,
        "agent": agent_name,
        "agent-size": str(len(data)),
        "agent-sha256": hashlib.sha256(data).hexdigest(),
        "java-min": str(java_min),
        **(overrides or {}),
    }
    (root / "bundle.txt").write_text(bundle_text(values))
    return root / JAR_NAME


def compile_apps(out: Path) -> Path:
    """Hello (the application) and the stub agents, compiled for Java 8 into `out`."""
    sources = [*APPS.glob("*.java"), *(APPS / "stub").glob("*.java")]
    return compile_java(sorted(sources), out)


def make_stub_jars(classes: Path, out: Path) -> dict[str, Path]:
    """A jar per entry of STUBS in `out`: the stub classes (compiled into `classes`) under a
    manifest naming that Premain-Class."""
    entries = {
        path.relative_to(classes).as_posix(): path.read_bytes()
        for path in sorted((classes / "stub").glob("*.class"))
    }
    jars = {}
    for name, premain in STUBS.items():
        manifest = "Manifest-Version: 1.0\r\n"
        manifest += f"Premain-Class: {premain}\r\n" if premain else ""
        jars[name] = out / f"{name}.jar"
        jars[name].write_bytes(archive(entries, manifest + "\r\n"))
    return jars
