"""`libinject bundle python`: a Python library bundle, ready to become an image layer.

Layout (the loader's contract):
    <out>/sitecustomize.py                     the loader (first on the app's PYTHONPATH)
    <out>/bundle.txt                           `flavor <flavor>` and `version <version>`
    <out>/sites/<tag>/                         one site-packages per target
    <out>/sites/<tag>/libinject-requires.txt   what the libraries need of the app's packages
Files identical across sites are hard links to one copy.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from libinject.api.types import Flavor
from libinject.bundle.dedup import Sizes, link_identical, sizes
from libinject.bundle.flavors import recipe
from libinject.bundle.pruning import Pruned
from libinject.bundle.stages import (
    BundleError,
    Stage,
    UnsupportedTargetError,
    compile_bytecode,
    interpreter,
    stage,
)
from libinject.bundle.targets import PYTHONS, Target
from libinject.engine.delivery import BUNDLE_MANIFEST

LOADER = "sitecustomize.py"
MANIFEST = BUNDLE_MANIFEST
# pip spends most of its time on the network; a few at once fill two cores without thrashing.
PARALLEL_INSTALLS = 3


@dataclass(frozen=True)
class BundleReport:
    flavor: Flavor
    version: str
    stages: tuple[Stage, ...]
    skipped: dict[str, str]  # target tag -> why the release does not support it
    linked: int  # files replaced by a link to an identical one
    sizes: Sizes

    def as_dict(self) -> dict[str, object]:
        return {
            "flavor": str(self.flavor),
            "version": self.version,
            "targets": [s.target.tag for s in self.stages],
            "skipped": self.skipped,
            "bytecode": [
                p for p in PYTHONS if any(s.bytecode and s.target.python == p for s in self.stages)
            ],
            "excluded": sorted({name for s in self.stages for name in s.removed}),
            "pruned": self.pruned().as_dict(),
            "linked_files": self.linked,
            "plain_install_bytes": sum(s.plain_bytes for s in self.stages),
            **self.sizes.as_dict(),
        }

    def pruned(self) -> Pruned:
        """What pruning left out of every site, each site's bytes counted."""
        total = Pruned()
        for built in self.stages:
            total.add(built.pruned)
        return total


def build(
    *,
    flavor: Flavor,
    version: str,
    targets: Sequence[Target],
    out: Path,
    cache: Path,
    say: Callable[[str], None] = lambda _: None,
) -> BundleReport:
    """Builds the bundle into `out`, which must not exist yet (nothing of the user's is lost)."""
    if out.exists():
        raise BundleError(f"{out} already exists; give a new directory")
    wanted = recipe(flavor, version)

    skipped: dict[str, str] = {}

    def one(target: Target) -> Stage | None:
        say(f"{target.tag}: installing {' '.join(wanted.requirements[:2])}...")
        try:
            return stage(recipe=wanted, target=target, cache=cache)
        except UnsupportedTargetError as error:
            say(f"skipping {error}")
            skipped[target.tag] = str(error).split(": ", 1)[1]
            return None

    with ThreadPoolExecutor(max_workers=PARALLEL_INSTALLS) as pool:
        stages = tuple(built for built in pool.map(one, sorted(targets)) if built is not None)
    if not stages:
        raise BundleError(f"{flavor} {version} supports none of the targets: {skipped}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as work:
        root = Path(work) / "bundle"
        for built in stages:
            # Copies, not links into the cache: an edit of the bundle must never reach the cache.
            shutil.copytree(built.site, root / "sites" / built.target.tag)
        linked = link_identical(root / "sites")
        _write_loader(root, flavor=flavor, version=version)
        root.rename(out)  # atomic: a half-built bundle never appears at `out`
    say(f"bundle written to {out}")
    return BundleReport(flavor, version, stages, dict(sorted(skipped.items())), linked, sizes(out))


def _write_loader(root: Path, *, flavor: Flavor, version: str) -> None:
    loader = resources.files("libinject.bundle").joinpath(LOADER).read_text()
    (root / LOADER).write_text(loader)
    (root / MANIFEST).write_text(f"flavor {flavor}\nversion {version}\n")
    # The loader runs at every interpreter start: its bytecode saves compiling it each time.
    for python in PYTHONS:
        binary = interpreter(python)
        if binary is not None:
            compile_bytecode(binary, root, recurse=False)
