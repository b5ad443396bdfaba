"""What a dataset's ``save`` wrote, read back as files: for an experiment tracker to attach to
its run, whatever the dataset's class (ours, kedro-datasets', a plugin's), as long as it
writes to a file path through fsspec as Kedro's file datasets do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractVersionedDataset
from kedro.io.core import get_filepath_str


def file_path(dataset: Any) -> PurePosixPath | None:
    """The dataset's path, unversioned (``data/08_reporting/mountaincar/report.md``), or None
    for a dataset that writes no file (in memory, a database)."""
    path = getattr(dataset, "_filepath", None)
    return None if path is None else PurePosixPath(str(path))


def saved_files(dataset: Any) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of what the last ``save`` wrote: its save version, even when a load
    version is pinned. A file is named by its file name; a folder (a dict of figures) gives
    each file in it as ``<folder name>/<relative path>``."""
    path = file_path(dataset)
    if path is None:
        return
    if isinstance(dataset, AbstractVersionedDataset) and dataset._version is not None:
        path = dataset._get_versioned_path(dataset.resolve_save_version())
    protocol = getattr(dataset, "_protocol", None) or "file"
    fs = getattr(dataset, "_fs", None) or fsspec.filesystem(protocol)
    full = get_filepath_str(path, protocol)
    if not fs.isdir(full):
        yield path.name, fs.cat_file(full)
        return
    for member in sorted(fs.find(full)):
        relative = PurePosixPath(member).relative_to(PurePosixPath(fs._strip_protocol(full)))
        yield f"{path.name}/{relative}", fs.cat_file(member)
