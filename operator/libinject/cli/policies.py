"""Loading InstrumentationPolicy objects from files for the offline commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.api.parse import InvalidPolicyError
from libinject.api.types import KIND, InstrumentationPolicy
from libinject.cli.documents import load_documents, read_source
from libinject.cli.errors import InputError
from libinject.cli.workloads import is_list
from libinject.engine.checks import usable_policy


def load_policies(source: str) -> list[InstrumentationPolicy]:
    """Every policy in a file or directory (Lists unwrapped); anything else is an error."""
    policies: dict[str, InstrumentationPolicy] = {}
    for name, content in read_source(source):
        for index, doc in load_documents(name, content):
            for obj in _unwrap(doc):
                policy = _parse(obj, name, index)
                if policy.name in policies:
                    raise InputError(name, f"policy {policy.name} is defined twice", document=index)
                policies[policy.name] = policy
    return list(policies.values())


def _unwrap(doc: Mapping[str, Any]) -> list[Any]:
    return list(doc.get("items") or []) if is_list(doc) else [doc]


def _parse(obj: Mapping[str, Any], name: str, index: int) -> InstrumentationPolicy:
    """`obj` is an object (libinject.cli.objects checked it and a List's items when loading)."""
    if obj.get("kind") != KIND:
        raise InputError(name, f"expected an {KIND}, found {obj.get('kind')}", document=index)
    try:
        return usable_policy(obj)
    except InvalidPolicyError as error:
        raise InputError(name, str(error), document=index) from error
