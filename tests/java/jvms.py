"""The JVMs the launcher's tests run, and how a test runs one.

Java 17 (the default JDK) and Java 25 are installed. Java 8, the oldest JVM the launcher claims,
is Debian sid's OpenJDK 8 JRE (the last Debian that has one): it needs glibc 2.38 and this
machine has bookworm's 2.36, so sid's libc6 comes with it, unpacked beside it and never
installed. The JRE's copy has its programs (java, keytool...) re-pointed at sid's dynamic loader
(patchelf, from the host's Debian), each started by a wrapper in bin/ that puts sid's libc first
on the library path: the java launcher finds its home from /proc/self/exe, so running it through
the loader by hand would not do. Built once into <cache root>/java/<jre>+<libc>/ (both Debian
versions in the name).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster import debian
from cluster.build import elapsed, locked, say
from tools.gobuild import BuildError, cache_root

JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JDK25 = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
JAVAC = JDK17 / "bin" / "javac"  # the default JDK's, as the launcher's jar is built with
JAVA8_JRE = Path("usr/lib/jvm/java-8-openjdk-amd64/jre")
SID_LIBS = Path("usr/lib/x86_64-linux-gnu")
DEBUG_PREFIX = "libinject: "
HELLO = "hello from the application"  # the first line of apps/Hello
# Every run of Hello keeps the real agents offline and quiet: no exporter, no telemetry, no
# remote configuration, the Datadog agent's address a closed port.
QUIET = {
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


@dataclass(frozen=True)
class Ran:
    """A finished JVM: its exit code and output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def debug_lines(self) -> list[str]:
        """The launcher's lines on stderr."""
        return [line for line in self.stderr.splitlines() if line.startswith(DEBUG_PREFIX)]

    @property
    def debug_line(self) -> str:
        """The one line the launcher wrote (fails unless there is exactly one)."""
        lines = self.debug_lines
        assert len(lines) == 1, f"expected one libinject line:\n{self.stderr}"
        return lines[0]

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(prefix)]


@dataclass(frozen=True)
class Jvm:
    """A Java runtime of a feature version, run through its `java` command."""

    feature: int
    java: Path

    def run(
        self,
        *arguments: str,
        env: Mapping[str, str],
        tool: str = "java",
        timeout: float = 120,
    ) -> Ran:
        """Runs `tool` (a program in the runtime's bin/) with only PATH and HOME of this
        process's environment, so the runner's own Java settings stay out."""
        program = self.java if tool == "java" else self.java.parent / tool
        return run_program([str(program), *arguments], env=env, timeout=timeout)

    def hello(self, classes: Path, env: Mapping[str, str], *options: str) -> Ran:
        """Runs apps/Hello (compiled into `classes`) with JVM `options`, in `env` over QUIET."""
        return self.run(*options, "-cp", str(classes), "Hello", env={**QUIET, **env})

    def __str__(self) -> str:
        return f"java{self.feature}"


def app_ran(ran: Ran) -> Ran:
    """`ran`, once checked that Hello ran normally: exit code 0, its line printed once."""
    assert ran.returncode == 0, ran.stderr
    assert ran.lines(HELLO) == [HELLO]
    return ran


def run_program(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: str = "",
    timeout: float = 120,
) -> Ran:
    """Runs `command` with `env` over PATH and HOME, `stdin` as its input; a program still
    running after `timeout` (a tool waiting for something) is killed, and what it wrote so far
    is its answer."""
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
    try:
        done = subprocess.run(
            command,
            env=clean,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return Ran(-9, _text(expired.stdout), _text(expired.stderr))
    return Ran(done.returncode, done.stdout, done.stderr)


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def injected(launcher: Path, **env: str) -> dict[str, str]:
    """The environment libinject gives a container (the launcher in JAVA_TOOL_OPTIONS), with the
    launcher's debug line on and `env` added."""
    return {"JAVA_TOOL_OPTIONS": f"-javaagent:{launcher}", "LIBINJECT_DEBUG": "true", **env}


def installed() -> list[Jvm]:
    """Java 17 and Java 25, the installed JDKs."""
    return [Jvm(17, JDK17 / "bin" / "java"), Jvm(25, JDK25 / "bin" / "java")]


def compile_java(sources: Sequence[Path], out: Path, *, classpath: Path | None = None) -> Path:
    """Compiles `sources` for Java 8 into `out` with the default JDK's javac."""
    out.mkdir(parents=True, exist_ok=True)
    command = [str(JAVAC), "--release", "8", "-encoding", "UTF-8", "-d", str(out)]
    if classpath is not None:
        command += ["-cp", str(classpath)]
    done = subprocess.run(
        [*command, *map(str, sources)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BuildError(f"javac failed:\n{done.stdout}{done.stderr}")
    return out


def java8() -> Jvm:
    """Debian sid's OpenJDK 8, runnable here (see the module's docstring)."""
    jre = debian.unpacked("openjdk-8-jre-headless", suite="sid")
    libc = debian.unpacked("libc6", suite="sid")
    target = cache_root() / "java" / f"{jre.name}+{libc.name}"
    if not target.is_dir():
        with locked(target.parent / ".lock"):
            if not target.is_dir():
                _make_java8(jre, libc, target)
    return Jvm(8, target / "bin" / "java")


def _make_java8(package: Path, libc: Path, target: Path) -> None:
    """Copies the JRE into `target`/jre with each program re-pointed at sid's loader, and
    writes `target`/bin/<program> wrappers that start them with sid's libc."""
    started = time.monotonic()
    say(f"making Debian sid's Java 8 runnable in {target}")
    patchelf = debian.unpacked("patchelf") / "usr" / "bin" / "patchelf"
    loader = libc / SID_LIBS / "ld-linux-x86-64.so.2"
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
        scratch = Path(work) / "java8"
        shutil.copytree(package / JAVA8_JRE, scratch / "jre", symlinks=True)
        _point_links_into(scratch / "jre", package)
        (scratch / "bin").mkdir()
        for program in sorted((scratch / "jre" / "bin").iterdir()):
            command = [str(patchelf), "--set-interpreter", str(loader), str(program)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BuildError(f"patchelf {program.name} failed:\n{done.stderr}")
            real = target / "jre" / "bin" / program.name  # where it is once renamed into place
            wrapper = scratch / "bin" / program.name
            wrapper.write_text(
                f'#!/bin/sh\nLD_LIBRARY_PATH="{libc / SID_LIBS}" exec "{real}" "$@"\n'
            )
            wrapper.chmod(0o755)
        scratch.rename(target)  # atomic: a half-made runtime is never cached
    say(f"Java 8 ready in {elapsed(started)}")


def _point_links_into(tree: Path, package: Path) -> None:
    """The JRE's configuration links name /etc/java-8-openjdk/..., which the package unpacked
    under its own root: point each at that copy (links to files the package lacks stay)."""
    for link in tree.rglob("*"):
        if not link.is_symlink():
            continue
        destination = Path(os.readlink(link))
        inside = package / destination.relative_to("/") if destination.is_absolute() else None
        if inside is not None and inside.exists():
            link.unlink()
            link.symlink_to(inside)
