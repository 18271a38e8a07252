"""The operator's start-up heap is frozen once the indexes are primed, after a collection: live
objects leave the cyclic collector's walk, garbage cycles made before are still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from libinject.runtime.serving import freeze_start_up_heap


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
