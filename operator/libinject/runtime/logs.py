"""Structured logs: structlog for our own lines, and Kopf's stdlib logging routed through the same
renderer, so the cluster's log pipeline gets one JSON object per line from every part of the
process."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

_TIMESTAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


def configure(log_format: str, *, level: int = logging.INFO) -> None:
    """Routes structlog and stdlib logging (Kopf, aiohttp) to stderr as `log_format`."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _TIMESTAMP,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _kopf_object],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp logs every request and Kopf every handler call at INFO: the one line per admission
    # and per status change is ours to write; their warnings and errors still come through.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def _kopf_object(_: Any, __: str, event: EventDict) -> EventDict:
    """Kopf names the object a line is about in `extra={"k8s_ref": ...}`: keep it as a field."""
    record = event.get("_record")
    reference = getattr(record, "k8s_ref", None)
    if isinstance(reference, dict):
        event["object"] = {k: v for k, v in reference.items() if k in {"kind", "name", "namespace"}}
    return event


def get(name: str) -> Any:
    """A bound structlog logger (typed Any: structlog's proxies are untyped)."""
    return structlog.get_logger(name)
