"""Versioned Kedro datasets for policy files (safetensors + JSON metadata, never pickle).

Kedro-datasets' experimental ``SafetensorsDataset`` saves a bare tensor dict; ours keeps the
DESIGN.md document that makes a file playable on its own, so it has a class of its own.
Writes go to a temporary name first and are renamed into place, so a crash mid-save never
leaves a half-written file where "latest version" would find it.
"""

from __future__ import annotations

from collections.abc import Callable
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

from hindsight_rl.core.policy_file import Policy, policy_from_bytes, policy_to_bytes
from hindsight_rl.datasets.atomic import publish_atomically


class _FsspecVersionedDataset(AbstractVersionedDataset):
    """Shared fsspec plumbing, as in Kedro's own file datasets."""

    def __init__(self, *, filepath: str, version: Version | None = None,
                 credentials: dict[str, Any] | None = None,
                 fs_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
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

    def _publish(self, path: str, write: Callable[[str], None]) -> None:
        publish_atomically(self._fs, path, write)
        self._invalidate_cache()

    def _write_bytes(self, path: str, data: bytes) -> None:
        with self._fs.open(path, "wb") as file:
            file.write(data)


class PolicyFileDataset(_FsspecVersionedDataset):
    """One :class:`~hindsight_rl.core.policy_file.Policy` as one ``.safetensors`` file.

    Example catalog entry::

        pretrained_policy:
          type: hindsight_rl.datasets.PolicyFileDataset
          filepath: data/06_models/pretrained_policy.safetensors
          versioned: true
    """

    def load(self) -> Policy:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, "rb") as file:
            return policy_from_bytes(file.read(), source=path)

    def save(self, data: Policy) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        self._publish(path, lambda temporary: self._write_bytes(temporary, policy_to_bytes(data)))


class PolicySetDataset(_FsspecVersionedDataset):
    """Several policies (one per training seed) as ``<name>.safetensors`` files in one folder.

    The folder is written under a temporary name and renamed as a whole, so a version is
    either complete or absent.
    """

    def load(self) -> dict[str, Policy]:
        folder = get_filepath_str(self._get_load_path(), self._protocol)
        policies = {}
        for path in sorted(self._fs.glob(f"{folder}/*.safetensors")):
            name = PurePosixPath(path).stem
            with self._fs.open(path, "rb") as file:
                policies[name] = policy_from_bytes(file.read(), source=path)
        if not policies:
            raise DatasetError(f"{folder}: no policy files found")
        return policies

    def save(self, data: dict[str, Policy]) -> None:
        def write_folder(temporary: str) -> None:
            self._fs.makedirs(temporary, exist_ok=True)
            for key, policy in data.items():
                self._write_bytes(f"{temporary}/{key}.safetensors", policy_to_bytes(policy))

        self._publish(get_filepath_str(self._get_save_path(), self._protocol), write_folder)
