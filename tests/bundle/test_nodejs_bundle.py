"""`libinject bundle nodejs` as a user runs it: the flavors' real npm packages installed by npm
from the committed locks, pruned and checked, started by real Node.js runtimes, and what the
command refuses (writing nothing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cluster.libraries import LIBINJECT, NODE_LOCKS, NODE_VERSIONS, build_node_bundle
from cluster.nodejs import node_binary
from libinject.api.types import Flavor
from libinject.bundle.nodejs.build import packaged_loader
from libinject.bundle.nodejs.engines import reduced
from libinject.bundle.nodejs.flavors import FLAVORS, OWN_TRACER_PACKAGES
from libinject.bundle.nodejs.locks import PACKAGE_LOCK, read
from libinject.bundle.nodejs.platforms import PLATFORMS
from libinject.engine.languages import NODE_LOADER
from tools.gobuild import cache_root

FLAVORS_LISTED = sorted(NODE_VERSIONS)
PROBES = Path(__file__).parent / "nodejs"
NPM_CACHE = cache_root() / "npm"
# Where the tracers send what they collect: a port nothing listens on.
CLOSED = "http://127.0.0.1:9"
MISSING_MODULE = ("Cannot find module", "MODULE_NOT_FOUND", "No native build was found")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each flavor's bundle and its JSON report, built once for this module."""
    root = tmp_path_factory.mktemp("nodejs-bundles")
    return {
        flavor: (root / flavor, build_node_bundle(flavor=flavor, out=root / flavor))
        for flavor in FLAVORS_LISTED
    }


def _bundle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIBINJECT), "bundle", "nodejs", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _manifest_lines(bundle: Path) -> list[tuple[str, str]]:
    lines = (bundle / "bundle.txt").read_text().splitlines()
    return [(key, value) for key, _, value in (line.partition(" ") for line in lines)]


def _version(package: Path) -> str:
    return str(json.loads((package / "package.json").read_text())["version"])


@pytest.mark.network  # the npm registry on a cold npm cache
@pytest.mark.parametrize("flavor", FLAVORS_LISTED)
def test_a_bundle_holds_the_locked_packages_the_loader_and_the_manifest_the_loader_reads(
    flavor: str, built: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    """The bundle is the loader (the shipped bytes), node_modules with every package the lock
    installs on any platform at its locked version (read from the installed package.json
    files), and bundle.txt with exactly the contract's keys: the tracer's own engines.node
    reduced to the loader's form (test_semver checks the reduction means the same), start and esm-hook paths that are files of the bundle, and both flavors' own-tracer
    packages. The report says the same."""
    bundle, report = built[flavor]
    version = NODE_VERSIONS[flavor]
    recipe = FLAVORS[Flavor(flavor)]
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        ["bundle.txt", NODE_LOADER, "node_modules"]
    )
    assert (bundle / NODE_LOADER).read_bytes() == packaged_loader().read_bytes()
    lock = read(NODE_LOCKS, Flavor(flavor), version)
    wanted = {path: v for platform in PLATFORMS for path, v in lock.installed_on(platform).items()}
    assert {path: _version(bundle / path) for path in wanted} == wanted
    tracer = json.loads((bundle / "node_modules" / recipe.tracer / "package.json").read_text())
    assert tracer["version"] == version
    lines = _manifest_lines(bundle)
    assert [key for key, _ in lines] == [
        "language", "flavor", "version", "node", "start", "esm-hook", *["own"] * len(OWN_TRACER_PACKAGES)
    ]  # fmt: skip
    manifest = dict(lines[:6])
    assert manifest["language"] == "nodejs"
    assert (manifest["flavor"], manifest["version"]) == (flavor, version)
    assert manifest["node"] == reduced(tracer["engines"]["node"])
    assert [value for key, value in lines if key == "own"] == list(OWN_TRACER_PACKAGES)
    for key in ("start", "esm-hook"):
        assert manifest[key].startswith("node_modules/")
        assert (bundle / manifest[key]).is_file()
    assert (report["start"], report["esm_hook"]) == (manifest["start"], manifest["esm-hook"])
    assert (report["node"], report["engines_node"]) == (manifest["node"], tracer["engines"]["node"])
    assert report["platforms"] == [p.name for p in PLATFORMS]
    assert report["plain_install_bytes"] <= report["platforms_install_bytes"]
    pruned = report["pruned"]
    assert pruned["bytes"] == sum(pruned["by_rule"].values()) > 0
    assert report["stored_bytes"] <= report["apparent_bytes"]
    assert report["apparent_bytes"] <= report["platforms_install_bytes"] - pruned["bytes"] + 2**16
    assert not list(bundle.rglob("*.d.ts"))
    assert not list(bundle.rglob("*.map"))
    assert not [p for p in bundle.rglob("*") if p.is_symlink()], "no links out of the bundle"


@pytest.mark.network
def test_every_native_addon_the_tracer_needs_is_prebuilt_for_every_platform(
    built: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    """dd-trace's native packages cover linux x64 and arm64, glibc and musl, on disk as the
    report says; oxc-parser's per-platform bindings are all four there; no build for another
    operating system is left. The OpenTelemetry flavor has no native addon."""
    bundle, report = built["ddtrace"]
    prebuilds = report["prebuilds"]
    needed = FLAVORS[Flavor.DDTRACE].needed_native
    assert {name for name, facts in prebuilds.items() if facts["needed"]} == set(needed)
    for name, facts in prebuilds.items():
        assert facts["covers"] == [p.name for p in PLATFORMS], name
    for name in needed:
        directories = {p.parent.name for p in (bundle / "node_modules" / name).rglob("*.node")}
        assert {"linux-x64", "linuxglibc-x64"} & directories, name
        assert all(d.startswith("linux") for d in directories), (name, directories)
    oxc = sorted(p.name for p in (bundle / "node_modules/@oxc-parser").iterdir())
    assert oxc == [
        f"binding-linux-{cpu}-{libc}" for cpu in ("arm64", "x64") for libc in ("gnu", "musl")
    ]
    assert built["opentelemetry"][1]["prebuilds"] == {}


def _specifiers(node: Path, tree: Path) -> list[tuple[str, str, str]]:
    command = [
        str(node),
        "--experimental-import-meta-resolve",
        str(PROBES / "specifiers.mjs"),
        str(tree),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return [tuple(item) for item in json.loads(done.stdout)]


@pytest.mark.network
@pytest.mark.parametrize("flavor", FLAVORS_LISTED)
def test_pruning_never_removed_a_file_that_a_require_or_import_names(
    flavor: str, built: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    """Every module specifier written in the packages' code (require, import, export from),
    resolved by Node 22 in a plain `npm ci` of the same lock, resolves to the same file in the
    pruned bundle, from every file the bundle kept. Left out: type-only imports of .d.ts files,
    which appear in JSDoc comments and which Node cannot load."""
    bundle, _ = built[flavor]
    plain = tmp_path / "plain"
    plain.mkdir()
    lock = NODE_LOCKS / f"{flavor}-{NODE_VERSIONS[flavor]}"
    for name in ("package.json", PACKAGE_LOCK):
        shutil.copyfile(lock / name, plain / name)
    npm = ["npm", "ci", "--offline", f"--cache={NPM_CACHE}", "--omit=dev", "--ignore-scripts"]
    subprocess.run(
        [*npm, "--no-audit", "--loglevel=error"], cwd=plain, check=True, capture_output=True
    )
    node = node_binary(22)
    named = [
        s for s in _specifiers(node, plain) if not s[2].endswith((".d.ts", ".d.mts", ".d.cts"))
    ]
    assert len(named) > 1000, "the scan reads the packages' code"
    kept = set(_specifiers(node, bundle))
    lost = [s for s in named if (bundle / s[0]).is_file() and s not in kept]
    assert lost == []


@pytest.mark.network  # Node 22, 24 and 26 from the npm registry on a cold cache
@pytest.mark.parametrize("major", [22, 24, 26])
@pytest.mark.parametrize("flavor", FLAVORS_LISTED)
def test_each_supported_node_starts_the_tracer_from_the_bundle(
    flavor: str, major: int, built: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    """A real Node of each supported major registers the bundle's ESM hook, requires its start
    module and imports an ES module, as the loader does, with every dd-trace feature that loads
    a native addon turned on and the exporters pointed at a closed port: it exits normally, the
    tracer is real (dd-trace's start-up line names its version and features; OpenTelemetry's
    span records, with a trace id), each needed native package loads its addon from the
    bundle's Linux build for this Node (dd-trace itself skips native-metrics on a Node that
    measures the event loop without it), and with the tracers' debug logs on nothing is
    missing."""
    bundle, _ = built[flavor]
    env = {
        "PATH": os.environ["PATH"],
        "DD_TRACE_AGENT_URL": CLOSED,
        "DD_TRACE_DEBUG": "true",
        "DD_APPSEC_ENABLED": "true",
        "DD_IAST_ENABLED": "true",
        "DD_PROFILING_ENABLED": "true",
        "DD_RUNTIME_METRICS_ENABLED": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": CLOSED,
        "OTEL_LOG_LEVEL": "debug",
        "OTEL_NODE_RESOURCE_DETECTORS": "env,host,os,process",  # no cloud metadata lookups
    }
    needed = FLAVORS[Flavor(flavor)].needed_native
    command = [str(node_binary(major)), str(PROBES / "start.mjs"), str(bundle), *needed]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert not [line for line in output.splitlines() if any(m in line for m in MISSING_MODULE)]
    (probe,) = [
        json.loads(line.split(" ", 1)[1])
        for line in done.stdout.splitlines()
        if line.startswith("libinject-probe ")
    ]
    if flavor == "ddtrace":
        assert f'"version":"{NODE_VERSIONS[flavor]}"' in output
        assert f'"lang_version":"{major}.' in output
        assert '"profiling_enabled":true,"appsec_enabled":true' in output
        loaded = {
            path.split("/prebuilds/")[0].removeprefix("node_modules/") for path in probe["natives"]
        }
        assert set(needed) <= loaded
        assert all("/prebuilds/linux" in path for path in probe["natives"])
    else:
        assert probe["span"]["recording"] is True
        assert probe["span"]["traceId"].strip("0")
        assert probe["natives"] == []


@pytest.mark.network  # the first build of this session may fill the npm cache
def test_a_second_build_reads_only_the_npm_cache(
    built: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    """With the cache warm, a build needs no network: npm pointed at a registry that is a
    closed port builds the same bundle, file for file, and reports no download."""
    first, _ = built["ddtrace"]
    env = {**os.environ, "npm_config_registry": f"{CLOSED}/"}
    out = tmp_path / "again"
    result = _bundle(
        "--flavor=ddtrace",
        f"--version={NODE_VERSIONS['ddtrace']}",
        f"--out={out}",
        f"--locks={NODE_LOCKS}",
        f"--cache={NPM_CACHE}",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["downloaded"] is False

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    assert files(out) == files(first)


def _tampered(tmp_path: Path, package: str) -> Path:
    """A copy of the ddtrace lock with one package's integrity hash changed in one character."""
    locks = tmp_path / "locks"
    name = f"ddtrace-{NODE_VERSIONS['ddtrace']}"
    shutil.copytree(NODE_LOCKS / name, locks / name)
    lock_file = locks / name / PACKAGE_LOCK
    document = json.loads(lock_file.read_text())
    entry = document["packages"][f"node_modules/{package}"]
    digest = entry["integrity"]
    entry["integrity"] = digest[:20] + ("A" if digest[20] != "A" else "B") + digest[21:]
    lock_file.write_text(json.dumps(document, indent=2) + "\n")
    return locks


@pytest.mark.network  # npm downloads the tarball again to check it
@pytest.mark.parametrize(
    ("package", "said"),
    [
        ("dd-trace", "EINTEGRITY"),  # a dependency npm must install: npm's own error
        # An optional dependency: npm skips it and succeeds, the lock check does not.
        ("@datadog/native-appsec", "did not install what"),
    ],
)
def test_a_lock_with_a_changed_integrity_hash_stops_the_build_and_nothing_is_written(
    package: str, said: str, tmp_path: Path
) -> None:
    """One integrity hash changed in the lock stops the build, whether npm fails on it itself
    (a required package) or skips the package it cannot verify (an optional one, as every
    dd-trace native addon is): the error names the failure, and no bundle appears."""
    locks = _tampered(tmp_path, package)
    out = tmp_path / "out" / "bundle"
    out.parent.mkdir()
    result = _bundle(
        "--flavor=ddtrace",
        f"--version={NODE_VERSIONS['ddtrace']}",
        f"--out={out}",
        f"--locks={locks}",
        f"--cache={NPM_CACHE}",
    )
    assert result.returncode == 2
    assert said in result.stderr
    assert "nothing was written" in result.stderr
    if package != "dd-trace":
        assert f"{package} 11.0.3 (absent)" in result.stderr
    assert list((tmp_path / "out").iterdir()) == [], "no half-built bundle is left behind"


def test_a_release_without_a_lock_is_refused_before_any_download(tmp_path: Path) -> None:
    """Never installed unlocked: with no lock, npm is not run, nothing is written, and the
    error says how to write one."""
    cache, out = tmp_path / "cache", tmp_path / "bundle"
    result = _bundle(
        "--flavor=ddtrace",
        "--version=6.0.404",
        f"--out={out}",
        f"--locks={tmp_path / 'locks'}",
        f"--cache={cache}",
    )
    assert result.returncode == 2
    assert (
        f"no lock for ddtrace 6.0.404 ({tmp_path / 'locks' / 'ddtrace-6.0.404'})" in result.stderr
    )
    assert "libinject lock nodejs --flavor ddtrace --version 6.0.404" in result.stderr
    assert not out.exists()
    assert not cache.exists()


def test_a_lock_of_another_release_is_refused_before_any_download(tmp_path: Path) -> None:
    locks, cache = tmp_path / "locks", tmp_path / "cache"
    version = NODE_VERSIONS["ddtrace"]
    shutil.copytree(
        NODE_LOCKS / f"opentelemetry-{NODE_VERSIONS['opentelemetry']}", locks / f"ddtrace-{version}"
    )
    result = _bundle(
        "--flavor=ddtrace",
        f"--version={version}",
        f"--out={tmp_path / 'b'}",
        f"--locks={locks}",
        f"--cache={cache}",
    )
    assert result.returncode == 2
    assert "is not the package.json `libinject lock nodejs` writes for ddtrace" in result.stderr
    assert not (tmp_path / "b").exists()
    assert not cache.exists()


def test_an_unknown_flavor_is_refused(tmp_path: Path) -> None:
    result = _bundle("--flavor=newrelic", "--version=1.0.0", f"--out={tmp_path / 'b'}")
    assert result.returncode == 2
    assert "invalid choice: 'newrelic'" in result.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("version", ["../../../etc/passwd", "6.21.0/../x", "latest", ""])
def test_a_version_that_is_not_a_release_is_refused(version: str, tmp_path: Path) -> None:
    """The version names a lock directory: anything but a release version is refused before
    it is read."""
    result = _bundle("--flavor=ddtrace", f"--version={version}", f"--out={tmp_path / 'b'}")
    assert result.returncode == 2
    assert f"--version: {version!r} is not a release version" in result.stderr
    assert not (tmp_path / "b").exists()


def test_an_existing_output_directory_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _bundle(
        "--flavor=ddtrace",
        f"--version={NODE_VERSIONS['ddtrace']}",
        f"--out={out}",
        f"--locks={NODE_LOCKS}",
    )
    assert result.returncode == 2
    assert f"{out} already exists; give a new directory" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
