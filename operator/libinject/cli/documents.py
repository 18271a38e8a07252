"""Reading YAML streams: files, directories and stdin, as lists of documents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from libinject.cli.errors import InputError

YAML_SUFFIXES = (".yaml", ".yml", ".json")


def read_source(source: str) -> list[tuple[str, str]]:
    """(name, text) for '-' (stdin), a file, or every YAML file of a directory (sorted)."""
    if source == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
        if not files:
            raise InputError(source, "the directory holds no .yaml, .yml or .json file")
        return [(str(p), p.read_text()) for p in files]
    try:
        return [(source, path.read_text())]
    except OSError as error:
        raise InputError(source, error.strerror or str(error)) from error


def load_documents(name: str, text: str) -> list[Any]:
    """Every non-empty document of a YAML stream, in order."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(name, f"{line}not valid YAML: {problem}") from error
    for index, doc in enumerate(documents, start=1):
        if not isinstance(doc, dict):
            raise InputError(name, "not a Kubernetes object (expected a mapping)", document=index)
    return documents


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors and aliases: manifests are read by people and by kubectl."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 (every node, whatever it is)
        return True


def dump_documents(documents: list[Any]) -> str:
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)
