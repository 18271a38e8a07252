"""Events on policies, posted through Kopf (and logged: every refusal says why in both)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from libinject.runtime import logs

log = logs.get(__name__)


def post(body: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
    name = (body.get("metadata") or {}).get("name")
    kopf.event(kopf.Body(cast(kopf.RawBody, body)), type=type, reason=reason, message=message)
    level = logging.WARNING if type == "Warning" else logging.INFO
    log.log(level, "policy event", policy=name, reason=reason, message=message)
