"""JSON in and out of the kubernetes client, whose types name only its models."""

from __future__ import annotations

import json
from typing import Any, cast


def json_of(response: object) -> dict[str, Any]:
    """The JSON of a call made with `_preload_content=False`: the client then returns the raw
    HTTP response, though its types name the model."""
    return dict(json.loads(cast("Any", response).data))


def body(obj: object) -> Any:
    """A JSON object (a dict) as a request body: the client sends dicts as they are, though its
    types name the model."""
    return obj
