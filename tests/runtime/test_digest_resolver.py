"""The operator's digest resolver (libinject.runtime.digests) against a real registry with the
real crane: it resolves the policies' image tags, follows a tag that moves, keeps the last known
digest beside the error when the registry goes away, and says why a tag never resolved."""

from __future__ import annotations

import asyncio
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from builders import JAVA, PYTHON, policy
from cluster.registry import Registry
from libinject.engine.digests import Pin
from libinject.runtime.digests import Resolver

Table = Mapping[str, Pin]


def _push(crane: Path, reference: str, tmp_path: Path, content: bytes) -> str:
    """A one-layer image holding `content` at `reference`; its digest."""
    source = tmp_path / "file"
    source.write_bytes(content)
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        tar.add(source, arcname="file")
    append = [str(crane), "append", "--oci-empty-base", "-f", str(layer), "-t", reference]
    subprocess.run(append, check=True, capture_output=True)
    digest = subprocess.run([str(crane), "digest", reference], check=True, capture_output=True)
    return digest.stdout.decode().strip()


async def _until(tables: list[Table], check: Callable[[Table], bool], what: str) -> Table:
    for _ in range(200):
        if tables and check(tables[-1]):
            return tables[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no table where {what}: {tables[-1:]}")


@pytest.mark.network  # the registry and crane on cold caches
def test_tags_resolve_move_and_keep_their_last_digest(crane: Path, tmp_path: Path) -> None:
    with Registry(tmp_path / "registry") as registry:
        prefix = f"{registry.address}/libinject"
        python = f"{prefix}/python-ddtrace:{PYTHON['version']}"
        java = f"{prefix}/java-ddtrace:{JAVA['version']}"  # never pushed
        first = _push(crane, python, tmp_path, b"one")
        resolver = Resolver(crane=crane, registry=prefix, interval=0.2)
        tables: list[Table] = []
        resolver.listen(tables.append)

        async def scenario() -> None:
            task = asyncio.create_task(resolver.keep_current())
            resolver.policy_seen("p", policy(libraries=[PYTHON, JAVA]))
            table = await _until(tables, lambda t: python in t, "the tags are resolved")
            assert table[python] == Pin(first)
            assert table[java].digest is None
            assert "MANIFEST_UNKNOWN" in (table[java].error or "")
            second = _push(crane, python, tmp_path, b"two")
            table = await _until(tables, lambda t: t[python].digest == second, "the tag moved")
            assert table[python] == Pin(second)
            registry.stop()
            table = await _until(tables, lambda t: t[python].error is not None, "it is gone")
            assert table[python].digest == second  # the last known one, beside the error
            resolver.policy_seen("p", policy(libraries=[JAVA]))
            table = await _until(tables, lambda t: python not in t, "python is no policy's")
            task.cancel()

        asyncio.run(scenario())


def test_a_crane_that_cannot_run_is_the_reason_given(tmp_path: Path) -> None:
    resolver = Resolver(crane=tmp_path / "no-crane", registry="r.example/l", interval=60)
    tables: list[Table] = []
    resolver.listen(tables.append)

    async def scenario() -> None:
        task = asyncio.create_task(resolver.keep_current())
        resolver.policy_seen("p", policy())
        table = await _until(tables, bool, "a table")
        (pin,) = table.values()
        assert pin.digest is None
        assert f"cannot run {tmp_path / 'no-crane'}" in (pin.error or "")
        task.cancel()

    asyncio.run(scenario())
