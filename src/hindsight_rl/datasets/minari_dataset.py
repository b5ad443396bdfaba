"""A trajectory table kept as a Minari dataset (the ``minari`` extra): read as source
rollouts, or written for d3rlpy, TorchRL and Minari's own tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset
from kedro.io.core import get_protocol_and_path

from hindsight_rl.core.minari_io import (
    check_dataset_args,
    check_dataset_id,
    dataset_source,
    read_minari_dataset,
    write_minari_dataset,
)
from hindsight_rl.datasets.contracts import ArtefactError, as_artefact_errors


class MinariDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """The Minari dataset ``dataset_id`` under ``datasets_path`` (the folder Minari's tools
    call ``MINARI_DATASETS_PATH``) as a trajectory table: checked against the table contract
    on load, written whole or not at all on save (``hindsight_rl.core.minari_io`` has the
    mapping).

    Not versioned by Kedro: a Minari dataset's version is the ``-v<N>`` of its id. Saving
    over an existing one needs ``overwrite: true``, so a dataset read as source rollouts is
    never replaced by the node that would otherwise collect them. ``save_args`` go to
    ``minari.create_dataset_from_buffers`` (``author``, ``author_email``,
    ``code_permalink``, ``description``, ``algorithm_name``, ``data_format``: ``arrow`` by
    default, ``hdf5`` needs h5py; ``requirements``).

    Example catalog entry (conf/local/catalog.yml), pretraining from a Minari dataset::

        sources.cartpole.source_rollouts:
          type: hindsight_rl.datasets.MinariDataset
          datasets_path: /data/minari
          dataset_id: cartpole/random-v0
    """

    def __init__(self, *, datasets_path: str, dataset_id: str, overwrite: bool = False,
                 save_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(str(datasets_path))
        if protocol != "file":
            raise ArtefactError(f"datasets_path: got {datasets_path!r}; Minari reads and "
                                "writes local folders only")
        with as_artefact_errors():
            check_dataset_id(dataset_id)
            check_dataset_args(save_args or {}, f"{dataset_source(path, dataset_id)}: save_args")
        self._datasets_path = Path(path)
        self._dataset_id = dataset_id
        self._overwrite = overwrite
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    @property
    def source(self) -> str:
        """``Minari dataset <id> in <folder>``, as errors name it."""
        return dataset_source(self._datasets_path, self._dataset_id)

    def load(self) -> pd.DataFrame:
        with as_artefact_errors():
            return read_minari_dataset(self._datasets_path, self._dataset_id)

    def save(self, data: pd.DataFrame) -> None:
        with as_artefact_errors():
            write_minari_dataset(data, self._datasets_path, self._dataset_id,
                                 overwrite=self._overwrite, **self._save_args)

    def _exists(self) -> bool:
        return (self._datasets_path / self._dataset_id / "data" / "metadata.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"datasets_path": str(self._datasets_path), "dataset_id": self._dataset_id,
                "overwrite": self._overwrite, "save_args": self._save_args}
