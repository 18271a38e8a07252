"""`python -m cluster up|down|status [DIR]` (with tests/ on sys.path): see cluster.supervisor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster import harness, supervisor
from tools.gobuild import BuildError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=supervisor.__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "serve"])
    parser.add_argument("directory", nargs="?", type=Path, default=None)
    args = parser.parse_args(argv)
    directory: Path = args.directory or supervisor.state_dir()
    commands = {
        "up": supervisor.up,
        "down": supervisor.down,
        "status": supervisor.status,
        "serve": supervisor.serve,
    }
    try:
        return commands[args.command](directory)
    except (BuildError, harness.StartupError, TimeoutError) as error:
        print(f"[cluster] {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
