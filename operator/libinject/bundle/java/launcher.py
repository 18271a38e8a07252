"""The launcher agent's jar, built reproducibly from the Java sources beside this module.

`libinject-launcher.jar` is what `JAVA_TOOL_OPTIONS=-javaagent:{root}/libinject-launcher.jar`
names: a tiny agent (package `dev.libinject.launcher`, no dependencies) that checks whether the
tracer may load in this JVM and then hands over to the real agent in the same directory
(Launcher.java; the checks are Decision.java). It is compiled for Java 8 (`javac --release 8`,
class files of major version 52), the oldest JVM it must load on.

The jar is committed as package data (every Java bundle copies it, and the CSI plugin's "library
not ready" volume holds it alone) and is rebuilt by `python -m libinject.bundle.java.launcher`.
The same javac gives the same bytes: entries in a fixed order, with a fixed date and mode, stored
uncompressed (a deflater's output may change with the zlib the build machine has).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

JAR_NAME = "libinject-launcher.jar"
LAUNCHER_JAR = Path(__file__).with_name(JAR_NAME)
SOURCES = tuple(sorted(Path(__file__).parent.glob("*.java")))
RELEASE = 8
MANIFEST_NAME = "META-INF/MANIFEST.MF"
# The capabilities of the Instrumentation the JVM gives the launcher are the ones its own
# manifest asks for, and the real agent gets that same instance: ask for all that agents use.
MANIFEST = (
    "Manifest-Version: 1.0\r\n"
    "Premain-Class: dev.libinject.launcher.Launcher\r\n"
    "Can-Redefine-Classes: true\r\n"
    "Can-Retransform-Classes: true\r\n"
    "Can-Set-Native-Method-Prefix: true\r\n"
    "\r\n"
)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
FILE_MODE = 0o644


class LauncherBuildError(RuntimeError):
    """The launcher could not be compiled; the message says why."""


def archive(entries: Mapping[str, bytes], manifest: str) -> bytes:
    """A jar of `entries` (path in the jar -> bytes): the manifest first, then the entries
    sorted by path, each stored with the same date and mode."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as jar:
        for name, data in [(MANIFEST_NAME, manifest.encode()), *sorted(entries.items())]:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, so the mode below is read as one
            info.external_attr = FILE_MODE << 16
            jar.writestr(info, data)
    return out.getvalue()


def compile_classes(*, javac: str, sources: tuple[Path, ...] = SOURCES) -> dict[str, bytes]:
    """The class files javac writes for `sources` at release 8: path in the jar -> bytes."""
    with tempfile.TemporaryDirectory(prefix="libinject-launcher-") as scratch:
        command = [
            javac,
            "--release",
            str(RELEASE),
            "-encoding",
            "UTF-8",
            "-Xlint:all,-options",  # newer javacs call release 8 obsolete; still supported
            "-Werror",
            "-d",
            scratch,
            *map(str, sources),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise LauncherBuildError(f"{javac}: {error}") from error
        if result.returncode != 0:
            raise LauncherBuildError(f"javac failed:\n{result.stdout}{result.stderr}")
        root = Path(scratch)
        return {
            path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*.class")
        }


def build(*, javac: str | None = None) -> bytes:
    """The launcher jar's bytes, compiled by `javac` (default: the one on PATH)."""
    compiler = javac or shutil.which("javac")
    if compiler is None:
        raise LauncherBuildError("building the launcher needs a JDK's javac on PATH")
    return archive(compile_classes(javac=compiler), MANIFEST)


def write(data: bytes, path: Path) -> None:
    """Writes `data` to `path` through a temporary file renamed over it."""
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(scratch, FILE_MODE)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def main() -> int:
    try:
        data = build()
    except LauncherBuildError as error:
        print(f"libinject.bundle.java.launcher: {error}", file=sys.stderr)
        return 1
    write(data, LAUNCHER_JAR)
    digest = hashlib.sha256(data).hexdigest()
    print(f"{LAUNCHER_JAR}: {len(data)} bytes, sha256 {digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
