"""Where the plugin gets its signing key (libinject.csi.keys): read lazily, read again when a
signature does not verify but at most once per interval, kept through a source outage, and
refused when too short to be the operator's."""

from __future__ import annotations

from pathlib import Path

import pytest

from libinject.csi import keys
from libinject.csi.keys import Keys, KeyUnavailableError
from libinject.engine import signature

FIRST, SECOND = b"a" * 64, b"b" * 64


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_file_key_is_read_when_first_needed_and_stripped(tmp_path: Path) -> None:
    """A mounted Secret's file may end with a newline; the key is the text without it."""
    path = tmp_path / "key"
    source = keys.from_file(path)  # no file yet: nothing read at construction
    path.write_bytes(FIRST + b"\n")
    assert source.current() == FIRST


def test_fresh_reads_again_at_most_once_per_interval(tmp_path: Path) -> None:
    """A new key (the operator made a new Secret) is picked up by `fresh`, but a stream of bad
    signatures reads the source at most once per REFRESH seconds."""
    path, clock, reads = tmp_path / "key", Clock(), []
    path.write_bytes(FIRST)

    def read() -> bytes:
        reads.append(clock.now)
        return path.read_bytes()

    source = Keys(read, source="test", clock=clock)
    assert source.current() == FIRST
    path.write_bytes(SECOND)
    assert source.fresh() == FIRST  # read 0 s ago: not again
    clock.now = keys.REFRESH
    assert source.fresh() == SECOND
    assert source.fresh() == SECOND
    assert source.current() == SECOND
    assert reads == [0.0, keys.REFRESH]


def test_a_source_outage_keeps_the_key_held(tmp_path: Path) -> None:
    """Once a key is held, a failed read (the API server down) keeps serving with it."""
    path, clock = tmp_path / "key", Clock()
    path.write_bytes(FIRST)

    def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as error:
            raise KeyUnavailableError(str(error)) from error

    source = Keys(read, source="test", clock=clock)
    assert source.current() == FIRST
    path.unlink()
    clock.now = keys.REFRESH
    assert source.fresh() == FIRST


@pytest.mark.parametrize("content", [None, b"", b"short", b"a" * (signature.KEY_BYTES - 1)])
def test_no_usable_key_is_unavailable(tmp_path: Path, content: bytes | None) -> None:
    """No file, or a key shorter than the operator's: KeyUnavailableError (the publish answers
    UNAVAILABLE and the kubelet retries), never an empty key that verifies nothing silently."""
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KeyUnavailableError):
        keys.from_file(path).current()
