"""Write-then-rename, so a reader (or Kedro's "latest version") never sees half a file."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fsspec import AbstractFileSystem


def publish_atomically(fs: AbstractFileSystem, path: str, write: Callable[[str], None]) -> None:
    """Let ``write`` fill a hidden temporary path beside ``path``, then rename it into place.

    A crash (even SIGKILL) mid-write leaves only a dot-file that no version glob matches;
    an exception also removes it.
    """
    parent, name = path.rsplit("/", 1) if "/" in path else (".", path)
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(temporary)
        fs.mv(temporary, path, recursive=True)
    finally:
        if fs.exists(temporary):
            fs.rm(temporary, recursive=True)


def publish_bytes(fs: AbstractFileSystem, path: str, payload: bytes,
                  open_args: dict[str, Any] | None = None) -> None:
    """Write ``payload`` to ``path`` whole or not at all (see :func:`publish_atomically`);
    ``open_args`` are the dataset's ``fs_args.open_args_save`` (a binary mode is forced)."""
    args = {**(open_args or {}), "mode": "wb"}
    args.pop("encoding", None)

    def write(temporary: str) -> None:
        with fs.open(temporary, **args) as file:
            file.write(payload)

    publish_atomically(fs, path, write)
