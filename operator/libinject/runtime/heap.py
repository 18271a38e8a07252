"""The operator's heap after bursts: what lives for the process's life is frozen out of the cyclic
collector's walk, and what a burst freed is given back to the system.

A start-up listing of 10,000 namespaces, or a `kubectl apply` of a thousand policies, parses and
then drops tens of MiB of watch events. glibc's malloc keeps the memory Python frees in its heaps
(one per thread that allocated) rather than returning it, so without a trim the resident size
stays at the burst's peak for the process's life (bench/scale.py, by hand: 188 -> 173 MiB with
one trim after the population).
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable


def freeze_start_up_heap() -> int:
    """Puts what is alive once the indexes are primed (modules, clients, the initial listings),
    which lives as long as the process, out of the cyclic collector's sight: a full collection
    then walks only what came later. It walked all of it before, about 120 ms on the event loop
    each time, 46 times in one webhook bench run. Collected first, so no garbage is frozen.
    Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def release_free_memory() -> bool:
    """Gives the pages malloc holds free back to the system (glibc's `malloc_trim(0)`, which also
    releases free pages inside its heaps, not only at their top); False where the C library has
    no such call (musl). It walks every heap, a few ms at this size: run after bursts, never per
    admission."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # the process's own C library
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]
