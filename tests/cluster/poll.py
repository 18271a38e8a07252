"""Waiting for a cluster to get somewhere: the one polling loop of the harness, fixtures and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T | None], *, what: str, timeout: float, interval: float = 0.1) -> T:
    """Calls `check` until it returns something truthy, and returns that.

    Raises TimeoutError naming `what` when time is up; `check` may raise to give up early (a
    process that died will never become ready).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
