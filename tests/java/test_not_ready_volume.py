"""The CSI plugin's "library not ready" directory: what a pod gets when its library cannot be
made ready in time. It holds the launcher jar alone, so a Java app whose JAVA_TOOL_OPTIONS names
the launcher starts normally (a missing -javaagent jar would abort its JVM)."""

from __future__ import annotations

import stat
from pathlib import Path

from java.jvms import Jvm, injected
from libinject.bundle.java.launcher import JAR_NAME, LAUNCHER_JAR
from libinject.csi.cache import Cache, CranePuller

NO_CRANE = CranePuller(Path("/nonexistent/crane"))  # nothing here pulls


def test_holds_the_launcher_alone_read_only(tmp_path: Path) -> None:
    """Made at start-up with the launcher's exact bytes, read-only; a directory left by an
    earlier version (an old launcher, another file) is brought to the same state."""
    stale = tmp_path / "not-ready"
    stale.mkdir()
    (stale / JAR_NAME).write_bytes(b"an older launcher")
    (stale / "bundle.txt").write_text("language java\n")
    for _ in range(2):  # a fresh directory, then a restart over it
        cache = Cache(tmp_path, NO_CRANE, not_ready_files=(LAUNCHER_JAR,))
        assert [p.name for p in cache.not_ready.iterdir()] == [JAR_NAME]
        jar = cache.not_ready / JAR_NAME
        assert jar.read_bytes() == LAUNCHER_JAR.read_bytes()
        assert stat.S_IMODE(jar.stat().st_mode) == 0o444
        assert stat.S_IMODE(cache.not_ready.stat().st_mode) == 0o555


def test_java_app_starts_with_it(jdk: Jvm, classes: Path, tmp_path: Path) -> None:
    """A Java app started with the launcher from that directory runs normally, and the line
    says the library is not ready."""
    cache = Cache(tmp_path, NO_CRANE, not_ready_files=(LAUNCHER_JAR,))
    ran = jdk.hello(classes, injected(cache.not_ready / JAR_NAME))
    assert ran.returncode == 0, ran.stderr
    assert ran.lines("hello from the application") != []
    assert ran.debug_line.startswith(
        f"libinject: tracer not loaded: library not ready: no bundle.txt in {cache.not_ready} "
    )
