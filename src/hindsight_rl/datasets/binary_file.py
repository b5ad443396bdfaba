"""A versioned Kedro dataset of one binary file (fsspec paths, versions as in Kedro's own
file datasets), written to a temporary name first and renamed into place, so a crash
mid-save never leaves a half-written file where "latest version" would find it. Policy
files and recorded episodes are such files."""

from __future__ import annotations

import base64
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
from kedro_datasets._typing import ImagePreview  # kedro-viz's preview types live here

from hindsight_rl.datasets.atomic import publish_bytes
from hindsight_rl.datasets.contracts import ArtefactError, RunOwnedVersions


class BinaryFileDataset(RunOwnedVersions, AbstractVersionedDataset):
    """The bytes of one file per version; subclasses turn them into their objects."""

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

    def _read(self) -> tuple[bytes, str]:
        """The bytes of the version to load, and its path for error messages."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, "rb") as file:
            return file.read(), path

    def _write(self, payload: bytes) -> None:
        publish_bytes(self._fs, get_filepath_str(self._get_save_path(), self._protocol),
                      payload)
        self._invalidate_cache()

    def load(self) -> Any:
        return self._read()[0]

    def save(self, data: bytes) -> None:
        self._write(data)


class GifDataset(BinaryFileDataset):
    """An animated GIF (a recorded episode) as bytes; kedro-viz previews it as an image.

    Example catalog entry::

        "{target}.seed_{seed}.{arm}_episode":
          type: hindsight_rl.datasets.GifDataset
          filepath: data/08_reporting/{target}/seed_{seed}/{arm}_episode.gif
          versioned: true
    """

    def save(self, data: bytes) -> None:
        if not data.startswith((b"GIF87a", b"GIF89a")):
            raise ArtefactError(f"{self._filepath}: refusing to save bytes that are not a GIF")
        self._write(data)

    def preview(self) -> ImagePreview:
        """The GIF, base64-encoded: kedro-viz shows it as an image (browsers animate it)."""
        return ImagePreview(base64.b64encode(self._read()[0]).decode("ascii"))
