"""The Java web app of the demo and the Java trace tests (examples/apps/java), built on first use.

Its jars come from Maven Central (maven-dependency-plugin copies what its pom.xml names, checksums
enforced, into the shared Maven repository of the cache); WebApp.java is compiled by the default
JDK's javac for Java 17. The build is cached by the hash of the two files, so a change rebuilds it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from cluster.build import elapsed, locked, say
from tools.gobuild import BuildError, cache_root

SOURCE = Path(__file__).parents[2] / "examples" / "apps" / "java"
MAIN_CLASS = "dev.libinject.examples.WebApp"


def java_webapp() -> Path:
    """The built app: `classes/` and `lib/*.jar`; run it with `command(app)`."""
    digest = hashlib.sha256()
    for name in ("pom.xml", "WebApp.java"):
        digest.update((SOURCE / name).read_bytes())
    target = cache_root() / "java-apps" / f"webapp-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        with locked(target.parent / f".{target.name}.lock"):
            if not (target / ".complete").exists():
                _build(target)
    return target


def command(app: Path, *, java: str = "java") -> list[str]:
    """The app's command line: its classes and jars on the class path, nothing else."""
    return [java, "-cp", f"{app / 'classes'}:{app / 'lib'}/*", MAIN_CLASS]


def image_env() -> dict[str, str]:
    """What the app's image would set: `java` on PATH is the host's default JDK (Java 17)."""
    return {"PATH": "/usr/bin:/bin"}


def _build(target: Path) -> None:
    started = time.monotonic()
    say(f"building the Java web app into {target}")
    shutil.rmtree(target, ignore_errors=True)
    _run(
        "mvn",
        "--batch-mode",
        "--quiet",
        "--strict-checksums",
        "-f",
        str(SOURCE / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target / 'lib'}",
        f"-Dmaven.repo.local={cache_root() / 'maven'}",
    )
    jars = ":".join(str(jar) for jar in sorted((target / "lib").glob("*.jar")))
    _run(
        "javac",
        "--release",
        "17",
        "-cp",
        jars,
        "-d",
        str(target / "classes"),
        str(SOURCE / "WebApp.java"),
    )
    (target / ".complete").touch()
    say(f"built the Java web app in {elapsed(started)}")


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{command[0]} failed:\n{done.stdout}{done.stderr}")
