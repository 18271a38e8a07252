"""Full bundles, as `libinject bundle python` builds them for the image: every interpreter,
platform and arch, from real wheels, loaded by every real interpreter this machine has.

The pip stages are cached under the libinject cache, so only a machine's first run downloads
(about 24 installs per flavor); later runs assemble from the cache in seconds.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cluster.libraries import VERSIONS, build_bundle
from libinject.api.types import Flavor
from libinject.bundle.flavors import recipe
from libinject.bundle.stages import interpreter
from libinject.bundle.targets import PYTHONS, all_targets

pytestmark = pytest.mark.network  # every bundle here is installed from PyPI (cached after)

FLAVORS = tuple(VERSIONS)
# The distribution whose wheel must match each target's interpreter, libc and arch: the one
# with native code in each flavor.
NATIVE = {"ddtrace": "ddtrace", "opentelemetry": "wrapt"}
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked
# Interpreters a flavor's pinned release does not support (its Requires-Python): the bundle has
# no directory for them and the loader refuses there. OpenTelemetry 0.63b0+ needs Python 3.10.
UNSUPPORTED = {"ddtrace": (), "opentelemetry": ("3.9",)}
# The only distributions with compiled code each flavor's bundle may hold (a target may have
# fewer: protobuf is pure Python where it has no wheel of its own). An instrumentation that
# pulled in its library (grpcio, psycopg2-binary) or any other native package fails here.
COMPILED = {
    "ddtrace": {"ddtrace", "wrapt"},
    "opentelemetry": {"charset-normalizer", "protobuf", "wrapt"},
}


def test_a_release_that_drops_an_interpreter_is_reported_not_failed(
    full: tuple[str, Path, dict[str, Any]],
) -> None:
    """pip refuses the pinned release for an interpreter its Requires-Python excludes: the build
    goes on, and the report names each target left out and why."""
    flavor, _, report = full
    expected = {t.tag for t in all_targets() if t.python in UNSUPPORTED[flavor]}
    assert set(report["skipped"]) == expected
    for why in report["skipped"].values():
        assert why == f"release {VERSIONS[flavor]} requires Python >=3.10"


@pytest.fixture(scope="module", params=FLAVORS)
def full(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, dict[str, Any]]:
    flavor = str(request.param)
    out = tmp_path_factory.mktemp("full") / flavor
    return flavor, out, build_bundle(flavor=flavor, out=out)


def test_every_target_gets_the_wheels_built_for_it(full: tuple[str, Path, dict[str, Any]]) -> None:
    """24 site directories, and in each the native distribution's wheel tag names that
    target's CPython version, libc family and arch: pip resolved for the target, not for the
    machine that built the bundle."""
    flavor, bundle, report = full
    built = [t for t in all_targets() if t.python not in UNSUPPORTED[flavor]]
    assert sorted(report["targets"]) == sorted(t.tag for t in built)
    for target in built:
        site = bundle / "sites" / target.tag
        [info] = site.glob(f"{NATIVE[flavor]}-*.dist-info")
        tags = [
            line.split(":", 1)[1].strip()
            for line in (info / "WHEEL").read_text().splitlines()
            if line.startswith("Tag:")
        ]
        python, platform = f"cp{target.python.replace('.', '')}", str(target.platform)
        assert any(tag.startswith(python) or "-abi3-" in tag for tag in tags), (target.tag, tags)
        assert any(
            tag.split("-")[2].startswith(platform) and tag.endswith(str(target.arch))
            for tag in tags
        ), (target.tag, tags)
        assert (site / "libinject-requires.txt").is_file()


def test_every_target_holds_every_distribution_of_the_recipe_and_no_other_native_one(
    full: tuple[str, Path, dict[str, Any]],
) -> None:
    """Each instrumentation the recipe names installs for every target the release supports,
    and what the libraries pulled in adds no compiled code beyond the flavor's known few."""
    flavor, bundle, report = full
    wanted = {
        canonicalize_name(Requirement(r).name)
        for r in recipe(Flavor(flavor), VERSIONS[flavor]).requirements
    }
    for tag in report["targets"]:
        infos = list((bundle / "sites" / tag).glob("*.dist-info"))
        installed = {canonicalize_name(info.name.split("-")[0]) for info in infos}
        assert wanted <= installed, (tag, sorted(wanted - installed))
        compiled = {
            canonicalize_name(info.name.split("-")[0])
            for info in infos
            if ".so," in (info / "RECORD").read_text()
        }
        assert compiled <= COMPILED[flavor], (tag, sorted(compiled - COMPILED[flavor]))


def test_identical_files_are_stored_once(full: tuple[str, Path, dict[str, Any]]) -> None:
    """Deduplication: the bundle stores fewer bytes than it shows, and fewer than the 24 plain
    installs it was made from."""
    report = full[2]
    assert report["linked_files"] > 0
    assert report["stored_bytes"] < report["apparent_bytes"]
    assert report["stored_bytes"] < report["plain_install_bytes"]


def test_each_target_has_unchecked_hash_bytecode_from_its_own_interpreter(
    full: tuple[str, Path, dict[str, Any]],
) -> None:
    """Where this machine has the target's interpreter, the site holds bytecode for it that
    stays valid when the copy step changes file times; the loader has its own too."""
    flavor, bundle, report = full
    present = [p for p in PYTHONS if interpreter(p) is not None and p not in UNSUPPORTED[flavor]]
    assert report["bytecode"] == present
    for python in present:
        tag = f"cpython-{python.replace('.', '')}"
        site = bundle / "sites" / f"cp{python.replace('.', '')}-manylinux-x86_64"
        compiled = next((site / NATIVE[flavor]).rglob(f"*.{tag}.pyc"))
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == UNCHECKED_HASH
        assert (bundle / "__pycache__" / f"sitecustomize.{tag}.pyc").is_file()


def test_one_interpreters_bytecode_is_stored_once_for_its_four_platforms(
    full: tuple[str, Path, dict[str, Any]],
) -> None:
    """A pure-Python module's bytecode for one interpreter is one stored file across that
    interpreter's sites for glibc and musl, x86_64 and aarch64: it is compiled without the
    build directory's name in it, so the four copies are identical and kept once."""
    _, bundle, report = full
    for python in report["bytecode"]:
        version = python.replace(".", "")
        sites = [
            bundle / "sites" / f"cp{version}-{platform}-{arch}"
            for platform in ("manylinux", "musllinux")
            for arch in ("x86_64", "aarch64")
        ]
        compiled = sorted(sites[0].rglob(f"*.cpython-{version}.pyc"))
        assert len(compiled) > 100, python
        for path in compiled[:: len(compiled) // 20]:  # twenty spread over the whole site
            relative = path.relative_to(sites[0])
            assert all(os.path.samefile(path, site / relative) for site in sites[1:]), relative


def test_what_no_import_reads_is_left_out_and_counted(
    full: tuple[str, Path, dict[str, Any]],
) -> None:
    """No type stub or native source is left in any site, and the report counts what each
    rule removed (both flavors ship type stubs: wrapt's)."""
    _, bundle, report = full
    assert not list((bundle / "sites").rglob("*.pyi"))
    assert not list((bundle / "sites").rglob("*.c"))
    assert report["pruned"]["by_rule"]["type stubs"] > 0
    assert report["pruned"]["bytes"] == sum(report["pruned"]["by_rule"].values())


@pytest.mark.parametrize("python", [p for p in PYTHONS if interpreter(p) is not None])
def test_every_local_interpreter_starts_the_tracer_from_the_full_bundle(
    full: tuple[str, Path, dict[str, Any]], python: str
) -> None:
    """Each real CPython 3.9+ on this machine picks its own site directory out of 24 and the
    tracer starts from it (debug line), importing the library from that directory; where the
    release does not support the interpreter, the app runs and the loader says why."""
    flavor, bundle, _ = full
    binary = interpreter(python)
    assert binary is not None
    module = {"ddtrace": "ddtrace", "opentelemetry": "opentelemetry.sdk.trace"}[flavor]
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(bundle),
        "LIBINJECT_DEBUG": "true",
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    # The module's file, and the file its bytecode's code objects name once imported (tracebacks
    # show that one): the bundle's bytecode records a relative name, the import puts the real one.
    code = (
        f"import sys; m = sys.modules.get('{module}'); "
        "print(m.__file__, m.__spec__.loader.get_code(m.__name__).co_filename) if m else print()"
    )
    result = subprocess.run(
        [str(binary), "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    site = bundle / "sites" / f"cp{python.replace('.', '')}-manylinux-x86_64"
    assert result.returncode == 0, result.stderr
    if python in UNSUPPORTED[flavor]:
        assert "no build for this interpreter/platform/arch" in result.stderr
        return
    assert f"libinject: loaded {flavor} {VERSIONS[flavor]} from {site}" in result.stderr
    source, named = result.stdout.split()
    assert source.startswith(str(site))
    assert named == source
