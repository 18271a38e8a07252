"""Input errors of the CLI: each names the file and the document it is about."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: the CLI prints this and exits 2, with nothing written to stdout."""

    def __init__(self, source: str, message: str, *, document: int | None = None) -> None:
        where = source if document is None else f"{source}, document {document}"
        super().__init__(f"{where}: {message}")
