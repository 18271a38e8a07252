"""The Node.js web app of the Node.js trace tests (examples/apps/nodejs), installed on first use.

Its packages (Express) come from the npm registry: `npm ci` installs exactly what the committed
package-lock.json pins, each tarball checked against its integrity hash, and runs no install
script. `node_webapp(own=...)` adds packages of the app's own on top (a tracer it ships, say:
`npm install --no-save` of exact releases). Each install is cached under
<cache root>/node-apps/, keyed by the hash of the app's files and the added packages, so a change
reinstalls; it is made in a temporary directory and renamed into place under a lock file, as
cluster.nodejs does. The app runs on Node 22 (the registry's build, cluster.nodejs): the tracers
need 22 or later, and the machine's Node is 20.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from cluster.build import elapsed, locked, say
from cluster.nodejs import node_binary, npm
from tools.gobuild import cache_root

SOURCE = Path(__file__).parents[2] / "examples" / "apps" / "nodejs"
FILES = ("package.json", "package-lock.json", "facts.cjs", "server.cjs", "server.mjs")
CJS = "server.cjs"
ESM = "server.mjs"
NODE_MAJOR = 22  # the oldest major both tracers support


def node_webapp(*, own: tuple[str, ...] = ()) -> Path:
    """The app's directory: its files and node_modules, with `own` packages (name@version
    each) installed in it besides; run it with `command(app)`."""
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((SOURCE / name).read_bytes())
    digest.update("\n".join(sorted(own)).encode())
    target = cache_root() / "node-apps" / f"webapp-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        with locked(target.parent / f".{target.name}.lock"):
            if not target.is_dir():  # another run may have installed it while we waited
                _install(target, own)
    return target


def command(app: Path, *, entry: str = CJS, node: Path | None = None) -> list[str]:
    """The app's command line: `node` (Node 22 unless given) and the entry script (server.cjs,
    or server.mjs for the ES module form), by absolute path."""
    return [str(node or node_binary(NODE_MAJOR)), str(app / entry)]


def image_env(*, node: Path | None = None) -> dict[str, str]:
    """What the app's image would set: `node` on PATH is Node 22 (or `node`'s)."""
    return {"PATH": f"{(node or node_binary(NODE_MAJOR)).parent}:/usr/bin:/bin"}


def _install(target: Path, own: tuple[str, ...]) -> None:
    started = time.monotonic()
    extra = f" with {' '.join(own)}" if own else ""
    say(f"installing the Node.js web app{extra} into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
        app = Path(work) / "app"
        app.mkdir()
        for name in FILES:
            shutil.copyfile(SOURCE / name, app / name)
        npm("ci", "--omit=dev", "--ignore-scripts", cwd=app)
        if own:
            npm("install", "--no-save", "--omit=dev", "--ignore-scripts", *own, cwd=app)
        app.rename(target)  # atomic: a half-done install is never cached
    say(f"installed the Node.js web app{extra} in {elapsed(started)}")
