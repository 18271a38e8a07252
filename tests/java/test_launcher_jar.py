"""The committed launcher jar (package data) is what its sources build: the same bytes from the
default JDK's javac, Java 8 class files, the agent manifest the JVM reads."""

from __future__ import annotations

import io
import struct
import zipfile

from java.jvms import JAVAC
from libinject.bundle.java import launcher

CLASSES = [
    "dev/libinject/launcher/Bundle.class",
    "dev/libinject/launcher/Decision.class",
    "dev/libinject/launcher/Launcher.class",
    "dev/libinject/launcher/Refused.class",
]


def test_committed_jar_is_rebuilt_byte_for_byte() -> None:
    """Compiling the sources beside launcher.py again gives exactly the committed jar: no
    timestamps, no order or mode of the build machine in it (after editing a source, run
    `python -m libinject.bundle.java.launcher`)."""
    assert launcher.build(javac=str(JAVAC)) == launcher.LAUNCHER_JAR.read_bytes()


def test_entries_manifest_and_class_versions() -> None:
    """The manifest first, then the launcher's four classes and nothing else, each class file of
    major version 52 (Java 8), each entry stored with the fixed date; the manifest names the
    launcher's premain and asks for the capabilities agents use."""
    with zipfile.ZipFile(io.BytesIO(launcher.LAUNCHER_JAR.read_bytes())) as jar:
        infos = jar.infolist()
        assert [info.filename for info in infos] == ["META-INF/MANIFEST.MF", *CLASSES]
        assert {info.date_time for info in infos} == {launcher.ZIP_DATE}
        for name in CLASSES:
            magic, _minor, major = struct.unpack(">IHH", jar.read(name)[:8])
            assert (magic, major) == (0xCAFEBABE, 52), name
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
    lines = [
        "Manifest-Version: 1.0",
        "Premain-Class: dev.libinject.launcher.Launcher",
        "Can-Redefine-Classes: true",
        "Can-Retransform-Classes: true",
        "Can-Set-Native-Method-Prefix: true",
    ]
    assert manifest == "".join(line + "\r\n" for line in lines) + "\r\n"  # the jar spec's form


def test_archive_is_independent_of_entry_order() -> None:
    """The same entries given in another order make the same bytes."""
    entries = {"b/B.class": b"\xca\xfe", "a/A.class": b"\xba\xbe"}
    reordered = dict(reversed(entries.items()))
    assert launcher.archive(entries, launcher.MANIFEST) == launcher.archive(
        reordered, launcher.MANIFEST
    )
