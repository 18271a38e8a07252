"""go-containerregistry's crane, run from the event loop: the operator's one way to ask a
registry anything (plain HTTP for localhost registries, credentials from crane's Docker config),
so no registry protocol is written here."""

from __future__ import annotations

import asyncio
from pathlib import Path

TIMEOUT_SECONDS = 20.0


async def ask(crane: Path, *args: str) -> tuple[str, str | None]:
    """What `crane <args>` prints, or why it printed nothing (its last error line, or why it
    could not run or did not finish within TIMEOUT_SECONDS)."""
    try:
        process = await asyncio.create_subprocess_exec(
            str(crane),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as error:
        return "", f"cannot run {crane}: {error.strerror or error}"
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return "", f"the registry did not answer within {TIMEOUT_SECONDS:.0f} s"
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
        return "", lines[-1].removeprefix("Error: ")
    return out.decode(errors="replace").strip(), None
