"""Reading YAML streams: files, directories and stdin, as lists of Kubernetes objects.

Input is bytes until proven text (UTF-8, or UTF-16/32 with a byte order mark), YAML within the
bounds of `libinject.cli.bounds`, and objects whose fields have the types the commands read
(`libinject.cli.objects`); anything else is an InputError naming the file, the document and
the field or line. libyaml's parser and emitter are used when PyYAML was built with them.
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path
from typing import Any

import yaml

from libinject.cli import bounds, objects
from libinject.cli.errors import InputError

YAML_SUFFIXES = (".yaml", ".yml", ".json")

# Longest first: the UTF-32 little-endian mark starts with the UTF-16 one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF16_LE, "utf-16"),
)


def loader_class(*, libyaml: bool) -> type[Any]:
    """A safe loader (libyaml's parser or PyYAML's own) that reads YAML as Kubernetes tools do:
    a timestamp stays the text it is (as kubectl keeps it; 2024-13-45 is then no error), and
    !!omap and !!pairs, which no JSON object holds and the writer cannot write back, are
    refused."""
    base: type[Any] = yaml.CSafeLoader if libyaml else yaml.SafeLoader
    loader: type[Any] = type("KubernetesLoader", (base,), {})
    loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
    for tag in ("omap", "pairs"):
        loader.add_constructor(f"tag:yaml.org,2002:{tag}", _refuse_ordered_pairs)
    return loader


def _refuse_ordered_pairs(loader: Any, node: yaml.Node) -> Any:  # noqa: ARG001 (a constructor)
    raise yaml.constructor.ConstructorError(
        None, None, f"{node.tag} has no JSON form, so no Kubernetes object holds one",
        node.start_mark,
    )  # fmt: skip


LOADER = loader_class(libyaml=yaml.__with_libyaml__)


def read_source(source: str) -> list[tuple[str, bytes]]:
    """(name, content) for '-' (stdin), a file, or every YAML file of a directory (sorted)."""
    if source == "-":
        return [("<stdin>", sys.stdin.buffer.read())]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
        if not files:
            raise InputError(source, "the directory holds no .yaml, .yml or .json file")
        return [(str(p), _read(p, str(p))) for p in files]
    return [(source, _read(path, source))]


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(name, error.strerror or str(error)) from error


def decode(name: str, content: bytes) -> str:
    """YAML's encodings: UTF-8, or UTF-16/32 announced by a byte order mark."""
    encoding = next((enc for bom, enc in _BYTE_ORDER_MARKS if content.startswith(bom)), "utf-8")
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as error:
        byte = content[error.start]
        raise InputError(
            name,
            f"not {encoding.removesuffix('-sig').upper()} text: byte 0x{byte:02x} at offset "
            f"{error.start} (a binary file?)",
        ) from error


def load_documents(
    name: str, content: bytes, *, loader: type[Any] = LOADER
) -> list[tuple[int, dict[str, Any]]]:
    """Every non-empty document of a YAML stream with its number in the stream (from 1)."""
    text = decode(name, content)
    scan = bounds.Scan()
    loaded: list[Any] = []
    try:
        scan.run(loader(text))
        loaded.extend(yaml.load_all(text, Loader=loader))
    except bounds.BoundError as error:
        raise InputError(name, str(error), document=error.document or None) from error
    except yaml.YAMLError as error:
        document = len(loaded) + 1 if scan.done else scan.document
        raise InputError(name, _yaml_problem(error), document=document or None) from error
    documents = [(number, doc) for number, doc in enumerate(loaded, start=1) if doc is not None]
    for number, doc in documents:
        if not isinstance(doc, dict):
            raise InputError(name, "not a Kubernetes object (expected a mapping)", document=number)
        problem = objects.problem(doc)
        if problem is not None:
            raise InputError(name, str(problem), document=number)
    return documents


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.reader.ReaderError):
        return f"character {error.position}: not valid YAML: {error.reason}"
    line = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    return f"{line}not valid YAML: {problem}"


_DUMPER_BASE: type[Any] = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper


class _PlainDumper(_DUMPER_BASE):  # type: ignore[misc]
    """Never writes anchors and aliases: manifests are read by people and by kubectl. libyaml's
    emitter, when present, writes the same values as PyYAML's own (long quoted strings may be
    folded at other places)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 (every node, whatever it is)
        return True


def dump_documents(documents: list[Any]) -> str:
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)
