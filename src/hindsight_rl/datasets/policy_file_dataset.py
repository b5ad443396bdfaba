"""Versioned Kedro datasets for policy files (safetensors + JSON metadata, never pickle).

Kedro-datasets' experimental ``SafetensorsDataset`` saves a bare tensor dict; ours keeps the
DESIGN.md document that makes a file playable on its own, so it has a class of its own.
Writes go to a temporary name first and are renamed into place, so a crash mid-save never
leaves a half-written file where "latest version" would find it.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)
from kedro_datasets._typing import JSONPreview  # kedro-viz's preview types live here

from hindsight_rl.core.policy_file import (
    Policy,
    policy_from_bytes,
    policy_to_bytes,
    read_document,
)
from hindsight_rl.datasets.atomic import publish_bytes
from hindsight_rl.datasets.contracts import RunOwnedVersions, as_artefact_errors


class PolicyFileDataset(RunOwnedVersions, AbstractVersionedDataset):
    """One :class:`~hindsight_rl.core.policy_file.Policy` as one ``.safetensors`` file, with
    fsspec paths and versioning as in Kedro's own file datasets.

    Example catalog entry::

        "sources.{source}.pretrained_policy":
          type: hindsight_rl.datasets.PolicyFileDataset
          filepath: data/06_models/sources/cartpole/pretrained_policy.safetensors
          versioned: true
    """

    def __init__(self, *, filepath: str, version: Version | None = None,
                 credentials: dict[str, Any] | None = None,
                 fs_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None, missing_ok: bool = False) -> None:
        """``missing_ok``: load ``None`` when nothing was saved yet (e.g. the first champion)."""
        self._missing_ok = missing_ok
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(path), version=version,
                         exists_function=self._fs.exists, glob_function=self._fs.glob)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return self._fs.exists(get_filepath_str(path, self._protocol))

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _read(self) -> tuple[bytes, str]:
        """The bytes of the version to load, and its path for error messages."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, "rb") as file:
            return file.read(), path

    def load(self) -> Policy | None:
        if self._missing_ok and not self._exists():
            return None
        data, path = self._read()
        with as_artefact_errors():
            return policy_from_bytes(data, source=path)

    def preview(self) -> JSONPreview:
        """kedro-viz's JSON preview: the file's metadata document (shapes, env, provenance),
        as the JSON text kedro-viz renders (it picks the renderer by this return type)."""
        data, path = self._read()
        with as_artefact_errors():
            return JSONPreview(json.dumps(read_document(data, source=path)))

    def save(self, data: Policy) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        with as_artefact_errors():
            payload = policy_to_bytes(data)  # fails before anything is written
        publish_bytes(self._fs, path, payload)
        self._invalidate_cache()
