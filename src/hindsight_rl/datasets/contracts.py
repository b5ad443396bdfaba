"""What every dataset of this project shares: project errors that pass Kedro and process
boundaries as themselves, and versions owned by the run that wrote them."""

from __future__ import annotations

import copyreg
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError

from hindsight_rl.core.errors import HindsightRLError, project_error_in


class ArtefactError(HindsightRLError, DatasetError):
    """A project error met while loading or saving an artefact: both a ``DatasetError``,
    which a dataset's load and save wrappers pass on as it is (any other error they wrap in
    "Failed while loading data from dataset …"), and a :class:`HindsightRLError`, which
    ``kedro run`` prints as one line."""


def _reduce_dataset_error(error: DatasetError) -> tuple[Any, ...]:
    """How a worker sends a ``DatasetError`` back to a parallel runner or Dask client.

    Kedro's catalog wraps a dataset's error in a new ``DatasetError`` (``"name: message"``,
    ours as its ``__cause__``), and pickling drops causes: the runner would get an error it
    cannot tell from a bug, and ``kedro run`` would print a traceback instead of our one
    line. One that a project error caused travels as that error (an :class:`ArtefactError`
    with its message, still a ``DatasetError``); every other one as Python would send it.
    """
    project = project_error_in(error)
    if project is None:
        return error.__reduce_ex__(2)
    return ArtefactError, (str(project),)


copyreg.pickle(DatasetError, _reduce_dataset_error)


@contextmanager
def as_artefact_errors() -> Iterator[None]:
    """Re-raise a :class:`HindsightRLError` as an :class:`ArtefactError` with its message."""
    try:
        yield
    except ArtefactError:
        raise
    except HindsightRLError as error:
        raise ArtefactError(str(error)) from error


class RunOwnedVersions:
    """A run reads what it wrote: with no load version pinned, a dataset this run has already
    saved (its save version exists) loads that version, not whatever is newest.

    Kedro's "latest" is the newest version on disk, which another run of the same project
    may have written meanwhile: without this, a run's fine-tuning could load another run's
    pretrained policy. Inputs the run did not produce are pinned when it starts
    (``RunManifestHook``); a version pinned with ``--load-versions`` always wins.

    A mixin placed before a Kedro versioned dataset class (not a dataset class itself:
    Kedro wraps the ``__init__`` of every dataset subclass).
    """

    def _fetch_latest_load_version(self: AbstractVersionedDataset) -> str:
        own = self._version.save if self._version else None
        own = own or self._cached_save_version
        if own and self._exists_function(str(self._get_versioned_path(own))):
            return own
        return super()._fetch_latest_load_version()  # type: ignore[misc]

    def loaded_version(self: AbstractVersionedDataset) -> str | None:
        """The version a load reads (None when not versioned), which loads attach to what
        they return so that reports can say which versions they came from."""
        if self._version is None:
            return None
        return PurePosixPath(self._get_load_path()).parent.name
