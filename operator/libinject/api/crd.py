"""The InstrumentationPolicy CustomResourceDefinition, built from the model."""

from __future__ import annotations

from typing import Any

from libinject.api.openapi import object_schema
from libinject.api.types import GROUP, KIND, PLURAL, VERSION, PolicySpec, PolicyStatus

PRINTER_COLUMNS = [
    {"name": "Languages", "type": "string", "jsonPath": ".status.languages"},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.injection.mode"},
    {"name": "Namespaces", "type": "integer", "jsonPath": ".status.matchedNamespaces"},
    {"name": "Instrumented", "type": "string", "jsonPath": ".status.instrumented"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    spec = object_schema(PolicySpec)
    status = object_schema(PolicyStatus)
    root = {
        "type": "object",
        "description": "InstrumentationPolicy chooses the namespaces, pods, languages and "
        "library versions that libinject instruments, and how the libraries are delivered.",
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "The API version: libinject.dev/v1alpha1.",
            },
            "kind": {"type": "string", "description": "InstrumentationPolicy."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["ipol"],
                "categories": ["libinject"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
