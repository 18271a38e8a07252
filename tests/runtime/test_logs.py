"""The operator's log lines, as a process writes them to stderr (a subprocess: the configuration
is process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging
    from libinject.runtime import logs

    early = logs.get("libinject.early")  # made at import, before configure, as modules do
    logs.configure("json")
    early.info("admission", pod="web-1", ms=1.5)
    early.debug("not shown")
    logging.getLogger("kopf.objects").warning("from kopf")
    try:
        raise ValueError("broken")
    except ValueError:
        early.exception("failed", pod="web-2")
    """
)


def test_every_line_is_one_json_object_naming_its_logger_and_level() -> None:
    """A logger made before `configure` (every module's) writes JSON once configured: structlog
    renders our lines itself, and a logger bound before `configure` would keep structlog's
    default console format, unreadable to a log pipeline. Debug is filtered; Kopf's stdlib lines
    share the format; an exception is kept in the line."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["event"], line["logger"], line["level"]) for line in lines] == [
        ("admission", "libinject.early", "info"),
        ("from kopf", "kopf.objects", "warning"),
        ("failed", "libinject.early", "error"),
    ]
    assert lines[0]["pod"] == "web-1"
    assert lines[0]["ms"] == 1.5
    assert all(line["timestamp"].endswith("Z") for line in lines)
    assert "ValueError: broken" in lines[2]["exception"]
