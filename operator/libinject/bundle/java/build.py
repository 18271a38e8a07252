"""`libinject bundle java`: a Java library bundle, ready to become an image layer.

Layout (what the launcher reads; the README's Java section):
    <out>/libinject-launcher.jar   the launcher agent JAVA_TOOL_OPTIONS names (the same bytes in
                                   every Java bundle: the one this libinject ships)
    <out>/bundle.txt               `key value` lines: language, flavor, version, agent,
                                   agent-size, agent-sha256, java-min
    <out>/<agent>                  dd-java-agent.jar or opentelemetry-javaagent.jar, exactly the
                                   bytes its committed lock pins
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from libinject.api.types import Flavor, Language
from libinject.bundle.dedup import sizes
from libinject.bundle.java import cache, locks
from libinject.bundle.java.agents import AGENTS, Agent
from libinject.bundle.java.maven import Digests
from libinject.bundle.stages import BundleError
from libinject.engine.delivery import BUNDLE_MANIFEST
from libinject.engine.languages import JAVA_LAUNCHER


def packaged_launcher() -> Path:
    """The launcher jar this libinject ships (package data beside this module)."""
    return Path(str(resources.files(__package__).joinpath(JAVA_LAUNCHER)))


def build(
    *,
    flavor: Flavor,
    version: str,
    out: Path,
    lock_dir: Path,
    cache_dir: Path,
    launcher: Path,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Builds the bundle into `out`, which must not exist yet, and reports what it holds.
    Nothing is written to `out` unless the agent's bytes match its lock."""
    if out.exists():
        raise BundleError(f"{out} already exists; give a new directory")
    lock_file, lock = locks.read(lock_dir, flavor, version)
    if not launcher.is_file():
        raise BundleError(f"the launcher agent {launcher} is missing from this libinject")
    agent = AGENTS[flavor]
    url = agent.url(version)

    def check(found: Digests) -> str | None:
        if lock.matches(found):
            return None
        return (
            f"{url} has sha256 {found.sha256} ({found.size} bytes), but {lock_file} locks "
            f"sha256 {lock.sha256} ({lock.size} bytes): refusing it; nothing was written"
        )

    jar = cache.jar_path(cache_dir, agent, version)
    _, downloaded = cache.verified(url, path=jar, check=check, say=say)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as work:
        root = Path(work) / "bundle"
        root.mkdir()
        # Copies, not links into the cache: an edit of the bundle must never reach the cache.
        shutil.copyfile(jar, root / agent.jar)
        shutil.copyfile(launcher, root / JAVA_LAUNCHER)
        manifest = _manifest(agent, flavor=flavor, version=version, lock=lock)
        (root / BUNDLE_MANIFEST).write_text(manifest)
        root.rename(out)  # atomic: a half-built bundle never appears at `out`
    say(f"bundle written to {out}")
    return {
        "language": str(Language.JAVA),
        "flavor": str(flavor),
        "version": version,
        "artifact": lock.artifact,
        "lock": str(lock_file),
        "downloaded": downloaded,
        "agent": agent.jar,
        "agent_bytes": lock.size,
        "agent_sha256": lock.sha256,
        "launcher_bytes": (out / JAVA_LAUNCHER).stat().st_size,
        "java_min": agent.java_min,
        **sizes(out).as_dict(),
    }


def _manifest(agent: Agent, *, flavor: Flavor, version: str, lock: locks.Lock) -> str:
    lines = {
        "language": str(Language.JAVA),
        "flavor": str(flavor),
        "version": version,
        "agent": agent.jar,
        "agent-size": str(lock.size),
        "agent-sha256": lock.sha256,
        "java-min": str(agent.java_min),
    }
    return "".join(f"{key} {value}\n" for key, value in lines.items())
