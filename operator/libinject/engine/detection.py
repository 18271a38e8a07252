"""Which languages a container's image runs, read from its OCI image config.

The config is what the image's build left: its environment (official language images set
PYTHON_VERSION, JAVA_HOME, NODE_VERSION, ...), its entrypoint and command, its PATH. It says
nothing about what a start script runs, so a config that names no language detects nothing, and
the policy's libraries go in as they would without detection. The operator fetches configs off
the admission path (libinject.runtime.detection); the engine only reads what it found.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libinject.api.types import Language


@dataclass(frozen=True)
class Detected:
    """What one image's config says: its languages (empty: it names none) and why."""

    languages: frozenset[Language]
    evidence: str


NOTHING = Detected(frozenset(), "its config names no language")
NOT_KNOWN = Detected(frozenset(), "its config is not known yet")

# Variables the official and common base images of each runtime set.
_ENV = {
    "PYTHON_VERSION": Language.PYTHON,
    "PYTHON_SHA256": Language.PYTHON,
    "JAVA_HOME": Language.JAVA,
    "JAVA_VERSION": Language.JAVA,
    "JDK_VERSION": Language.JAVA,
    "JRE_VERSION": Language.JAVA,
    "NODE_VERSION": Language.NODEJS,
    "YARN_VERSION": Language.NODEJS,
    "DOTNET_VERSION": Language.DOTNET,
    "ASPNET_VERSION": Language.DOTNET,
    "RUBY_VERSION": Language.RUBY,
    "PHP_VERSION": Language.PHP,
}
# Programs an entrypoint or command starts, by file name.
_PROGRAMS = {
    "python": Language.PYTHON,
    "gunicorn": Language.PYTHON,
    "uvicorn": Language.PYTHON,
    "hypercorn": Language.PYTHON,
    "celery": Language.PYTHON,
    "uwsgi": Language.PYTHON,
    "java": Language.JAVA,
    "node": Language.NODEJS,
    "npm": Language.NODEJS,
    "npx": Language.NODEJS,
    "yarn": Language.NODEJS,
    "dotnet": Language.DOTNET,
    "ruby": Language.RUBY,
    "bundle": Language.RUBY,
    "puma": Language.RUBY,
    "php": Language.PHP,
    "php-fpm": Language.PHP,
}
_VERSIONED = re.compile(r"^(python|php)[0-9.]*$")  # python3, python3.12, php8.3
# PATH entries that only an installed runtime puts there.
_PATHS = (
    ("/opt/java/openjdk/", Language.JAVA),
    ("/usr/lib/jvm/", Language.JAVA),
    ("/usr/local/openjdk", Language.JAVA),
)
_SHELLS = {"sh", "bash", "dash", "ash", "tini", "dumb-init", "env"}


def detect(config: Mapping[str, Any]) -> Detected:
    """The languages an image config (the `config` object of an OCI image config) names."""
    found: dict[Language, str] = {}
    variables = dict(_variables(config.get("Env")))
    for name, language in _ENV.items():
        if name in variables:
            found.setdefault(language, f"{name} in its environment")
    entries = [entry + "/" for entry in variables.get("PATH", "").split(":")]
    for prefix, language in _PATHS:  # weaker than a variable: named only where none is
        if any(entry.startswith(prefix) for entry in entries):
            found.setdefault(language, f"{prefix} on its PATH")
    for key in ("Entrypoint", "Cmd"):
        program = _program(config.get(key))
        if program is not None:
            language, name = program
            found.setdefault(language, f"its {key.lower()} runs {name}")
    if not found:
        return NOTHING
    evidence = "; ".join(found[language] for language in sorted(found))
    return Detected(frozenset(found), evidence)


def _variables(env: Any) -> Iterable[tuple[str, str]]:
    for entry in env if isinstance(env, list) else ():
        if isinstance(entry, str):
            name, _, value = entry.partition("=")
            yield name, value


def _program(argv: Any) -> tuple[Language, str] | None:
    """The runtime the command line starts: its first word, or, after a shell or an init such as
    tini, the first word that is a program it knows."""
    words = [word for word in argv if isinstance(word, str)] if isinstance(argv, list) else []
    for word in words[:4]:
        if " " in word.strip():  # a shell's -c line: its first command
            return _program([part for part in word.split() if part != "exec"])
        name = posixpath.basename(word)
        if name in _PROGRAMS:
            return _PROGRAMS[name], name
        versioned = _VERSIONED.match(name)
        if versioned is not None:
            return _PROGRAMS[versioned[1]], name
        if name not in _SHELLS and not word.startswith("-"):
            return None
    return None
