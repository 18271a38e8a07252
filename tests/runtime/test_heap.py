"""The operator's start-up heap is frozen once the indexes are primed, after a collection: live
objects leave the cyclic collector's walk, garbage cycles made before are still freed. And what a
burst freed is given back to the system, not kept resident by the allocator."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from libinject.runtime.heap import freeze_start_up_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run keeps Python's usual collector


@pytest.mark.usefixtures("unfrozen")
def test_live_objects_are_frozen_and_cycles_already_garbage_are_collected() -> None:
    kept = [Node() for _ in range(1000)]
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    assert gone() is not None  # a cycle: only the collector frees it

    frozen = freeze_start_up_heap()

    assert gone() is None
    assert frozen == gc.get_freeze_count() >= len(kept)
    walked = {id(obj) for obj in gc.get_objects()}  # the permanent generation is not walked
    assert not any(id(node) in walked for node in kept)


TRIMMED = """
import json, os
from libinject.runtime.heap import release_free_memory

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

blocks = [bytes(2048) for _ in range(100_000)]  # 200 MiB in malloc's heap (over pymalloc's 512 B)
kept = blocks[::100]  # one block in a hundred stays: the heap's top never comes free
del blocks
before = resident()
trimmed = release_free_memory()
print(json.dumps({"trimmed": trimmed, "before": before, "after": resident()}))
"""


def test_memory_a_burst_freed_goes_back_to_the_system() -> None:
    """Blocks freed in the middle of malloc's heap (a live one above them, as watch events
    interleave with what the indexes keep) stay resident until the trim; after it, most of the
    200 MiB are gone. In a fresh process, so the heap is this test's alone."""
    result = subprocess.run(
        [sys.executable, "-c", TRIMMED], capture_output=True, text=True, check=True, timeout=60
    )
    sizes = json.loads(result.stdout)
    assert sizes["trimmed"] is True
    assert sizes["before"] - sizes["after"] > 150 * 2**20, sizes
