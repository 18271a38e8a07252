"""The bundle builder's parts that need no network: targets, requirements, dedup, the layer."""

from __future__ import annotations

import os
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from libinject.bundle import siteprune
from libinject.bundle.dedup import link_identical, sizes
from libinject.bundle.requirements import merged_requirements, render, widened
from libinject.bundle.targets import Arch, Platform, Target, all_targets, parse_tag
from libinject.engine.platforms import by_platform
from libinject.images.layer import write_layer

AMD64, ARM64 = by_platform("linux/amd64"), by_platform("linux/arm64")

DDTRACE_METADATA = """\
Metadata-Version: 2.1
Name: ddtrace
Version: 4.16.0
Requires-Dist: bytecode<1,>=0.17.0; python_version >= "3.14.0"
Requires-Dist: bytecode<1,>=0.14.0; python_version ~= "3.11.0"
Requires-Dist: bytecode<1,>=0.13.0; python_version < "3.11"
Requires-Dist: wrapt!=2.2.0,<3,>=1
Requires-Dist: opentracing<3,>=2; extra == "opentracing"
Requires-Dist: uvloop; sys_platform == "win32"
"""
ENVIER_METADATA = """\
Metadata-Version: 2.1
Name: envier
Version: 0.6.1
Requires-Dist: Wrapt>=1.14
"""


def test_the_matrix_is_every_interpreter_platform_and_arch() -> None:
    """24 targets, each tag unique and parsed back to itself: the loader finds its directory
    by the same tag."""
    targets = all_targets()
    assert len(targets) == 6 * 2 * 2
    assert len({t.tag for t in targets}) == len(targets)
    assert all(parse_tag(t.tag) == t for t in targets)
    assert Target("3.11", Platform.MUSLLINUX, Arch.AARCH64).tag == "cp311-musllinux-aarch64"


def test_an_unknown_tag_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match=r"unknown target 'cp38-manylinux-x86_64'.*cp39"):
        parse_tag("cp38-manylinux-x86_64")


def test_pip_is_told_the_target_not_the_running_interpreter() -> None:
    arguments = Target("3.9", Platform.MUSLLINUX, Arch.X86_64).pip_arguments()
    assert "--python-version=3.9" in arguments
    assert "--platform=musllinux_1_2_x86_64" in arguments
    assert "--only-binary=:all:" in arguments


def test_requirements_follow_the_target_markers_and_merge_across_requirers() -> None:
    """Markers are evaluated for the target's interpreter (not the builder's), extras and other
    platforms are dropped, and two requirers of wrapt give one combined specifier."""
    metadata = [DDTRACE_METADATA, ENVIER_METADATA]
    on_311 = merged_requirements(
        metadata, markers=Target("3.11", Platform.MANYLINUX, Arch.X86_64).markers()
    )
    on_39 = merged_requirements(
        metadata, markers=Target("3.9", Platform.MANYLINUX, Arch.X86_64).markers()
    )
    on_314 = merged_requirements(
        metadata, markers=Target("3.14", Platform.MANYLINUX, Arch.X86_64).markers()
    )
    assert on_311["bytecode"] == SpecifierSet(">=0.14.0,<1")
    assert on_39["bytecode"] == SpecifierSet(">=0.13.0,<1")
    assert on_314["bytecode"] == SpecifierSet(">=0.17.0,<1")
    assert on_311["wrapt"] == SpecifierSet("!=2.2.0,<3,>=1,>=1.14")
    assert "opentracing" not in on_311
    assert "uvloop" not in on_311
    assert render(on_311) == "bytecode <1,>=0.14.0\nwrapt !=2.2.0,<3,>=1,>=1.14\n"


@pytest.mark.parametrize(
    ("pinned", "accepted"),
    [
        ("==1.45.1", "~=1.45"),  # this minor or any later one of the same major
        ("==1.45", "~=1.45"),
        ("==1.45.1.post2", "~=1.45"),
        ("==2!1.45.1", "~=2!1.45"),  # the epoch stays
        ("==1.45.1,~=1.12,>=1.37", "~=1.12,~=1.45,>=1.37"),  # only the pin moves
        ("==1.45.1,!=1.46.0", "!=1.46.0,~=1.45"),  # a known-bad release stays refused
        ("==1.45.1,<1.45.3", "<1.45.3,~=1.45"),  # another requirer's bound stays
        ("==1.46.0rc1", "==1.46.0rc1"),  # a pre-release promises nothing wider
        ("==1.46.0.dev3", "==1.46.0.dev3"),
        ("==1.45.1+local", "==1.45.1+local"),  # a local build is that build only
        ("==1.45.*", "==1.45.*"),
        ("==1", "==1"),  # no minor to keep
        ("===1.45.1", "===1.45.1"),  # arbitrary equality is text, not a version
        (">=1.45.1", ">=1.45.1"),
    ],
)
def test_an_exact_pin_of_a_stable_api_is_widened_to_its_major_from_that_minor(
    pinned: str, accepted: str
) -> None:
    """A patch or minor release of a stable API the application has must not turn tracing off
    (the SDK pins opentelemetry-api==1.45.1; apps have 1.45.2): `==X.Y.Z` becomes `~=X.Y`, and
    nothing else changes, so real incompatibilities are still refused by the loader."""
    requirements = {"opentelemetry-api": SpecifierSet(pinned)}
    assert widened(requirements, stable=["OpenTelemetry_API"]) == {
        "opentelemetry-api": SpecifierSet(accepted)
    }


def test_only_the_stable_apis_are_widened() -> None:
    """The SDK, the 0.x packages released with it and every other pin stay exact."""
    requirements = {
        "opentelemetry-api": SpecifierSet("==1.45.1"),
        "opentelemetry-sdk": SpecifierSet("==1.45.1"),
        "opentelemetry-semantic-conventions": SpecifierSet("==0.66b1"),
    }
    assert render(widened(requirements, stable=["opentelemetry-api"])) == (
        "opentelemetry-api ~=1.45\n"
        "opentelemetry-sdk ==1.45.1\n"
        "opentelemetry-semantic-conventions ==0.66b1\n"
    )
    assert widened(requirements, stable=()) == requirements


def test_identical_files_are_stored_once_and_different_ones_kept(tmp_path: Path) -> None:
    """Two sites with the same source and different native files: the source is linked, the
    native files are not, and the apparent size is unchanged while the stored size shrinks."""
    for site, native in (("cp311", b"\x7fELF-311"), ("cp312", b"\x7fELF-312")):
        package = tmp_path / site / "lib"
        package.mkdir(parents=True)
        (package / "code.py").write_text("print('same everywhere')\n" * 100)
        (package / "_native.so").write_bytes(native)
    before = sizes(tmp_path)
    assert link_identical(tmp_path) == 1
    after = sizes(tmp_path)
    assert os.path.samefile(tmp_path / "cp311/lib/code.py", tmp_path / "cp312/lib/code.py")
    assert not os.path.samefile(
        tmp_path / "cp311/lib/_native.so", tmp_path / "cp312/lib/_native.so"
    )
    assert after.apparent == before.apparent
    assert after.stored == before.stored - len("print('same everywhere')\n" * 100)
    assert link_identical(tmp_path) == 0  # a second pass finds nothing more


def test_a_file_with_other_permissions_is_not_linked(tmp_path: Path) -> None:
    """A link shares its mode: an executable and a plain file with the same bytes stay apart."""
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").write_text("x")
    (tmp_path / "b").chmod(0o755)
    assert link_identical(tmp_path) == 0


def _fake_bundle(root: Path) -> None:
    (root / "sites/cp311-manylinux-x86_64").mkdir(parents=True)
    (root / "sitecustomize.py").write_text("# loader\n")
    (root / "bundle.txt").write_text("flavor ddtrace\nversion 4.16.0\n")
    (root / "sites/cp311-manylinux-x86_64/a.py").write_text("a = 1\n")
    os.link(root / "sites/cp311-manylinux-x86_64/a.py", root / "sites/cp311-manylinux-x86_64/b.py")


def test_the_layer_is_reproducible_and_keeps_hard_links(tmp_path: Path) -> None:
    """The same bundle gives byte-identical layers (so the registry stores one blob); links
    stay links; entries are root-owned and dated 0; the copy program sits at bin/busybox."""
    bundle = tmp_path / "bundle"
    _fake_bundle(bundle)
    static = _static_program(tmp_path)
    first, second = tmp_path / "1.tar", tmp_path / "2.tar"
    write_layer(bundle=bundle, copy_program=static, machine=AMD64, out=first)
    os.utime(bundle / "sitecustomize.py", (12345, 12345))
    write_layer(bundle=bundle, copy_program=static, machine=AMD64, out=second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as layer:
        members = {m.name: m for m in layer.getmembers()}
    assert members["bin/busybox"].mode == 0o755
    assert members["libinject/sitecustomize.py"].mode == 0o644
    linked = [m for m in members.values() if m.islnk()]
    assert len(linked) == 1
    assert {m.uid for m in members.values()} == {0}
    assert {m.mtime for m in members.values()} == {0}


def test_a_dynamic_copy_program_is_refused(tmp_path: Path) -> None:
    """The image has no libc: a dynamically linked program would fail in every init container,
    so the build refuses it up front."""
    bundle = tmp_path / "bundle"
    _fake_bundle(bundle)
    dynamic = Path(shutil.which("ls") or "/bin/ls")
    with pytest.raises(ValueError, match="not a static ELF"):
        write_layer(bundle=bundle, copy_program=dynamic, machine=AMD64, out=tmp_path / "l.tar")


def test_a_directory_without_a_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    """Every bundle, Python's or Java's, has bundle.txt; a directory without one is refused."""
    (tmp_path / "sitecustomize.py").write_text("# a loader alone is not a bundle\n")
    with pytest.raises(ValueError, match=r"not a bundle \(no bundle.txt\)"):
        write_layer(
            bundle=tmp_path, copy_program=Path("/bin/ls"), machine=AMD64, out=tmp_path / "l.tar"
        )


def _static_program(tmp_path: Path, machine: int = AMD64.elf, *, bits: int = 64) -> Path:
    """A minimal static ELF for `machine`: a header and no program headers at all (so no
    interpreter)."""
    header = bytearray(64)
    header[:6] = b"\x7fELF" + bytes([bits // 32, 1])
    header[18:20] = machine.to_bytes(2, "little")
    path = tmp_path / f"static-{machine}-{bits}"
    path.write_bytes(bytes(header))
    return path


def test_a_copy_program_for_another_machine_is_refused(tmp_path: Path) -> None:
    """An arm64 busybox in the amd64 image would fail every init container on amd64 nodes
    (exec format error): refused before a layer is written."""
    bundle = tmp_path / "bundle"
    _fake_bundle(bundle)
    arm64 = _static_program(tmp_path, ARM64.elf)
    out = tmp_path / "l.tar"
    with pytest.raises(ValueError, match=r"static-183-64 is not a program for linux/amd64"):
        write_layer(bundle=bundle, copy_program=arm64, machine=AMD64, out=out)
    assert not out.exists()
    write_layer(bundle=bundle, copy_program=arm64, machine=ARM64, out=out)
    assert out.is_file()


@pytest.mark.parametrize(("machine", "bits"), [(ARM64.elf, 64), (3, 32), (40, 32)])
def test_a_bundle_with_another_machines_code_is_refused(
    tmp_path: Path, machine: int, bits: int
) -> None:
    """Each platform's image holds only the code its nodes run: an extension module of another
    machine (aarch64, or 32-bit i386 or ARM) in an amd64 bundle is refused, naming the file;
    the same bundle with the module built for amd64 makes a layer."""
    bundle = tmp_path / "bundle"
    _fake_bundle(bundle)
    site = bundle / "sites/cp311-manylinux-x86_64"
    shutil.copy(_static_program(tmp_path, machine, bits=bits), site / "_native.so")
    (site / "data.bin").write_bytes(b"\x7fEL")  # too short to be ELF: data, not code
    static, out = _static_program(tmp_path), tmp_path / "l.tar"
    with pytest.raises(
        ValueError, match=r"another machine than linux/amd64 \(sites/.*/_native.so\)"
    ):
        write_layer(bundle=bundle, copy_program=static, machine=AMD64, out=out)
    assert not out.exists()
    shutil.copy(_static_program(tmp_path, AMD64.elf), site / "_native.so")
    write_layer(bundle=bundle, copy_program=static, machine=AMD64, out=out)
    with tarfile.open(out) as layer:
        assert "libinject/sites/cp311-manylinux-x86_64/_native.so" in layer.getnames()


SITE_KEPT = [
    "pkg/__init__.py",
    "pkg/core.py",
    "pkg/_native.cpython-312-x86_64-linux-gnu.so",
    "pkg/data/table.json",
    "pkg/cacert.pem",  # a data file the package opens itself
    "pkg/LICENSE.md",  # licences travel with the code, whatever their format
    "pkg/sub/__init__.py",
    "pkg/sub/tests/__init__.py",  # a `tests` package deep in a package's code: may be imported
    "pkg/testing/__init__.py",  # ddtrace's `testing` is runtime code
    "pkg-1.0.dist-info/METADATA",
    "pkg-1.0.dist-info/RECORD",
    "pkg-1.0.dist-info/entry_points.txt",  # how OpenTelemetry finds instrumentations
    "pkg-1.0.dist-info/licenses/README.md",  # metadata stays whole, whatever its files are
    "single.py",
    "tests.py",  # a module named tests is not a test package
]
SITE_PRUNED = {
    "pkg/__init__.pyi": "type stubs",
    "pkg/py.typed": "type stubs",
    "pkg-stubs/__init__.pyi": "type stubs",
    "pkg/_native.c": "native sources",
    "pkg/_speedups.pyx": "native sources",
    "pkg/include/api.h": "native sources",
    "pkg/schema/trace.proto": "protocol buffer definitions",
    "pkg/README.md": "documentation",
    "pkg/tests/__init__.py": "tests",
    "pkg/tests/test_core.py": "tests",
}


def test_a_python_site_loses_only_what_no_import_reads(tmp_path: Path) -> None:
    """Type stubs, native sources, protobuf definitions, documentation and a package's own
    top-level test suite go, each counted under its rule; modules, extension modules, data
    files, distribution metadata and nested `tests` packages stay, and a directory left empty
    (a stubs-only package) is removed."""
    site = tmp_path / "site"
    for name in [*SITE_KEPT, *SITE_PRUNED]:
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    pruned = siteprune.prune(site)
    left = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    assert left == sorted(SITE_KEPT)
    assert not (site / "pkg-stubs").exists()
    assert not (site / "pkg/include").exists()
    assert (pruned.files, pruned.bytes) == (len(SITE_PRUNED), 10 * len(SITE_PRUNED))
    files_per_rule = Counter(SITE_PRUNED.values())
    assert dict(pruned.by_rule) == {rule: 10 * files for rule, files in files_per_rule.items()}
