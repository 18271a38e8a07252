"""`libinject bundle nodejs`: a Node.js library bundle, ready to become an image layer.

Layout (what the loader reads; the README's Node.js section):
    <out>/libinject-loader.js   the loader NODE_OPTIONS requires (the same bytes in every Node.js
                                bundle: the one this libinject ships)
    <out>/node_modules/         the flavor's packages as `npm ci` installs them from the committed
                                lock, for linux x64 and arm64 (or the one cpu asked for) with
                                glibc and musl, pruned of what the runtime never reads (addons
                                for other machines too), identical files stored once (hard links)
    <out>/bundle.txt            `key value` lines, written last: language, flavor, version, node
                                (the tracer's engines.node, reduced: bundle/nodejs/engines.py),
                                start and esm-hook (paths from <out>),
                                and one `own <package>` line per package that means an app has
                                its own tracer
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from libinject.api.types import Flavor, Language
from libinject.bundle.dedup import link_identical, sizes
from libinject.bundle.nodejs import locks, npm
from libinject.bundle.nodejs.engines import reduced
from libinject.bundle.nodejs.flavors import FLAVORS, OWN_TRACER_PACKAGES, NodeFlavor
from libinject.bundle.nodejs.install import install
from libinject.bundle.nodejs.platforms import PLATFORMS, Platform
from libinject.bundle.nodejs.prebuilds import coverage
from libinject.bundle.nodejs.prune import prune
from libinject.bundle.stages import BundleError
from libinject.engine.delivery import BUNDLE_MANIFEST
from libinject.engine.languages import NODE_LOADER

# Asks the Node on PATH (npm's) what `require` and `import` resolve the start module and the ESM
# hook to, from the bundle's root: exactly what the loader will load, exports maps and all.
_RESOLVE = """
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
const [start, hook] = process.argv.slice(2)
const require = createRequire(import.meta.url)
const found = { start: require.resolve(start) }
found.hook = fileURLToPath(await import.meta.resolve(hook))
console.log(JSON.stringify(found))
"""
_PROBE = ".libinject-resolve.mjs"


def packaged_loader() -> Path:
    """The loader this libinject ships (package data beside this module)."""
    return Path(str(resources.files(__package__).joinpath(NODE_LOADER)))


def build(
    *,
    flavor: Flavor,
    version: str,
    out: Path,
    lock_dir: Path,
    cache: Path,
    loader: Path,
    served: tuple[Platform, ...] = PLATFORMS,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Builds the bundle into `out`, which must not exist yet, and reports what it holds.
    Nothing is written to `out` unless npm installed exactly what the lock pins, everywhere."""
    if out.exists():
        raise BundleError(f"{out} already exists; give a new directory")
    lock = locks.read(lock_dir, flavor, version)
    if not loader.is_file():
        raise BundleError(f"the loader {loader} is missing from this libinject")
    npm.check_version()
    recipe = FLAVORS[flavor]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as work:
        installed = install(lock=lock, work=Path(work), cache=cache, served=served, say=say)
        root = installed.node_modules.parent
        for name in (locks.PACKAGE_JSON, locks.PACKAGE_LOCK):
            (root / name).unlink()
        pruned = prune(installed.node_modules, cpus={platform.cpu for platform in served})
        say(f"pruned {pruned.files} files ({pruned.bytes / 1e6:.1f} MB) the runtime never reads")
        paths = _entry_points(root, recipe)
        prebuilds = _checked_prebuilds(root, lock=lock, recipe=recipe, served=served)
        engines = _engines(root, recipe, version)
        node = reduced(engines)
        linked = link_identical(root / "node_modules")
        shutil.copyfile(loader, root / NODE_LOADER)
        (root / BUNDLE_MANIFEST).write_text(
            manifest(flavor=flavor, version=version, node=node, paths=paths)
        )
        root.rename(out)  # atomic: a half-built bundle never appears at `out`
    say(f"bundle written to {out}")
    return {
        "language": str(Language.NODEJS),
        "flavor": str(flavor),
        "version": version,
        "lock": str(lock.directory),
        "downloaded": installed.downloaded,
        "tracer": f"{recipe.tracer}@{version}",
        "engines_node": engines,
        "node": node,
        "start": paths["start"],
        "esm_hook": paths["esm-hook"],
        "platforms": [platform.name for platform in served],
        "platform_packages": installed.platform_packages,
        "prebuilds": prebuilds,
        "plain_install_bytes": installed.plain_bytes,
        "platforms_install_bytes": installed.bytes,
        "pruned": pruned.as_dict(),
        "linked_files": linked,
        "loader_bytes": (out / NODE_LOADER).stat().st_size,
        **sizes(out).as_dict(),
    }


def manifest(*, flavor: Flavor, version: str, node: str, paths: dict[str, str]) -> str:
    lines = [
        ("language", str(Language.NODEJS)),
        ("flavor", str(flavor)),
        ("version", version),
        ("node", node),
        ("start", paths["start"]),
        ("esm-hook", paths["esm-hook"]),
        *(("own", name) for name in OWN_TRACER_PACKAGES),
    ]
    return "".join(f"{key} {value}\n" for key, value in lines)


def _entry_points(root: Path, recipe: NodeFlavor) -> dict[str, str]:
    """The start module and the ESM hook as Node resolves them in the pruned tree, relative to
    the bundle's root; the build stops when either is not there."""
    probe = root / _PROBE
    probe.write_text(_RESOLVE)
    try:
        done = subprocess.run(
            ["node", str(probe), recipe.start, recipe.esm_hook],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        probe.unlink()
    if done.returncode != 0:
        error = next((line for line in done.stderr.splitlines() if "Error" in line), done.stderr)
        raise BundleError(
            f"Node cannot resolve the {recipe.tracer} start module {recipe.start!r} or its ESM "
            f"hook {recipe.esm_hook!r} in the installed packages: {error.strip()}"
        )
    found = json.loads(done.stdout)
    paths = {"start": Path(found["start"]), "esm-hook": Path(found["hook"])}
    base = root.resolve()  # Node answers with real paths
    for key, path in paths.items():
        if not path.is_relative_to(base / "node_modules") or not path.is_file():
            raise BundleError(f"the {key} module resolves to {path}, not a file of the bundle")
    return {key: path.relative_to(base).as_posix() for key, path in paths.items()}


def _checked_prebuilds(
    root: Path, *, lock: locks.Lock, recipe: NodeFlavor, served: tuple[Platform, ...]
) -> dict[str, dict[str, object]]:
    """What each native package's addons cover; the build stops when a package a tracer
    feature needs lacks one of the served platforms."""
    found = coverage(root / "node_modules", lock.packages, served=served)
    for name in recipe.needed_native:
        if name not in found:
            raise BundleError(
                f"{recipe.tracer} needs the native package {name}, which the lock does not "
                "install or which ships no addon"
            )
        if found[name].missing:
            raise BundleError(
                f"{name} ships no prebuilt addon for {', '.join(found[name].missing)}: "
                f"{recipe.tracer} needs it there, and a bundle never compiles one"
            )
    return {
        name: covered.as_dict(needed=name in recipe.needed_native)
        for name, covered in sorted(found.items())
    }


def _engines(root: Path, recipe: NodeFlavor, version: str) -> str:
    """The tracer package's engines.node, verbatim: the Node versions the loader starts it on."""
    manifest_path = root / "node_modules" / recipe.tracer / "package.json"
    document = json.loads(manifest_path.read_text(encoding="utf-8"))
    if document.get("version") != version:
        raise BundleError(f"{manifest_path} is version {document.get('version')}, not {version}")
    node = (document.get("engines") or {}).get("node")
    if not isinstance(node, str) or not node.strip():
        raise BundleError(f"{manifest_path} states no engines.node: the loader could not check")
    return node.strip()
