"""Application environments for the pod runner: what an app's image would hold.

An app container is run from the host's Python, so its "image" is a virtualenv with the app's
own packages (Flask, and for some tests its own ddtrace or an old dependency). Each virtualenv
is cached by its requirements under the libinject cache and marked complete only when pip
finished, so an interrupted build is rebuilt, never reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.gobuild import cache_root

WEBAPP = Path(__file__).parents[2] / "examples" / "apps" / "webapp.py"
FLASK = ("flask==3.1.2",)


def virtualenv(requirements: tuple[str, ...], *, python: str = sys.executable) -> Path:
    """A virtualenv of `python` with these packages; its directory (bin/python inside)."""
    key = hashlib.sha256(repr((requirements, python)).encode()).hexdigest()[:16]
    target = cache_root() / "venvs" / f"app-{key}"
    complete = target / ".complete"
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".app-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs never build the same one at once
        if not complete.exists():
            # Built at its final path: a virtualenv's scripts hold its absolute path.
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run([python, "-m", "venv", str(target)], check=True)
            if requirements:  # none: an app of the standard library only
                pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet"]
                subprocess.run([*pip, "--disable-pip-version-check", *requirements], check=True)
            complete.touch()
    return target


def image_env(venv: Path) -> dict[str, str]:
    """What the app's image would set: its interpreter first on PATH."""
    return {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
