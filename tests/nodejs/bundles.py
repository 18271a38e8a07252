"""The bundles the loader's tests run: the layout of a Node.js library image's /libinject.

A bundle directory holds libinject-loader.js (the package data's bytes), node_modules and
bundle.txt (see NODE.md's keys: language, flavor, version, node, start, esm-hook, own). Real
bundles hold the tracers from the npm registry at the versions images/nodejs/versions lists;
stub bundles hold apps/stub-start.js, which prints a line when it starts, so that a test sees
"no tracer started" rather than assume it, and may hold apps/stub-hook.js as their ES module hook,
which prints a line when the loader sets it up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from cluster.libraries import NODE_VERSIONS, build_node_bundle
from cluster.nodejs import npm_installed
from java.agents import bundle_text as key_values
from libinject.api.types import Flavor
from libinject.bundle.nodejs.flavors import FLAVORS as RECIPES

LOADER_NAME = "libinject-loader.js"
LOADER = Path(__file__).parents[2] / "operator" / "libinject" / "bundle" / "nodejs" / LOADER_NAME
APPS = Path(__file__).parent / "apps"
VERSIONS = NODE_VERSIONS  # images/nodejs/versions: flavor -> version
FLAVORS = tuple(sorted(VERSIONS))
# A tracer of either vendor that the application ships means it runs its own: one per process.
OWN = ("dd-trace", "@opentelemetry/sdk-node", "@opentelemetry/auto-instrumentations-node")
STUB_VERSION = "1.0"
STUB = f"stub {STUB_VERSION}"  # how the loader names a stub bundle
STUB_STARTED = "stub tracer started"
SEMVER = "semver@7.8.6"  # npm's range matcher: the oracle of the loader's own
SDK_NODE = "@opentelemetry/sdk-node@0.300.0"  # what auto-instrumentations-node 0.82.0 starts

BundleFactory = Callable[..., Path]  # makes a bundle directory, returns its loader's path


def package(flavor: str) -> str:
    """The npm spec of `flavor`'s tracer package at its listed version."""
    return f"{RECIPES[Flavor(flavor)].tracer}@{VERSIONS[flavor]}"


def npm_installs() -> tuple[tuple[str, ...], ...]:
    """Every package list the tests give cluster.nodejs.npm_installed (`make testbin` installs
    them all, so that no test downloads)."""
    return ((SEMVER,), (package("ddtrace"),), (SDK_NODE,))


def bundle_text(values: Mapping[str, str | None], own: tuple[str, ...] = OWN) -> str:
    """bundle.txt for `values` (a None value leaves its key out), an `own` line per name."""
    return key_values(values) + "".join(f"own {name}\n" for name in own)


def build_real_bundle(flavor: str, out: Path) -> Path:
    """`flavor`'s bundle as its image holds it, built by `libinject bundle nodejs` from the
    committed lock into `out`. Returns the loader's path."""
    build_node_bundle(flavor=flavor, out=out)
    return out / LOADER_NAME


def make_stub_bundle(
    out: Path,
    *,
    node: str = ">=20.0.0",
    start: Path = APPS / "stub-start.js",
    hook: Path | None = None,
    overrides: Mapping[str, str | None] | None = None,
    own: tuple[str, ...] = OWN,
) -> Path:
    """A bundle in `out` whose tracer is `start` (copied to node_modules/stub/start.js) and, given
    a `hook`, whose ES module hook is that file (node_modules/stub/hook.js); `overrides` replace
    or (None) remove bundle.txt's values. Returns the loader's path."""
    (out / "node_modules" / "stub").mkdir(parents=True)
    shutil.copyfile(start, out / "node_modules" / "stub" / "start.js")
    if hook is not None:
        shutil.copyfile(hook, out / "node_modules" / "stub" / "hook.js")
    shutil.copyfile(LOADER, out / LOADER_NAME)
    values = {
        "language": "nodejs",
        "flavor": "stub",
        "version": STUB_VERSION,
        "node": node,
        "start": "node_modules/stub/start.js",
        **({"esm-hook": "node_modules/stub/hook.js"} if hook is not None else {}),
        **(overrides or {}),
    }
    (out / "bundle.txt").write_text(bundle_text(values, own))
    return out / LOADER_NAME


def app_dir(out: Path, *, own: tuple[str, ...] = ()) -> Path:
    """The test apps copied into `out`, with `own` npm packages (name@version) installed in
    their node_modules as the application's own dependencies."""
    shutil.copytree(APPS, out)
    if own:
        installed = npm_installed(own)
        shutil.copytree(installed / "node_modules", out / "node_modules", copy_function=os.link)
    return out
