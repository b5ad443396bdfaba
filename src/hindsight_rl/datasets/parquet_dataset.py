"""Parquet tables saved atomically, and trajectory tables checked on every load and save.

Both extend kedro-datasets' ``pandas.ParquetDataset`` (so versioning, fsspec paths,
``load_args``/``save_args`` and kedro-viz previews work as users know them) and change only
how a version is written: to a temporary name first, renamed into place when complete.
"""

from __future__ import annotations

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import ParquetDataset

from hindsight_rl.core.trajectories import validate_table
from hindsight_rl.datasets.atomic import publish_atomically


class AtomicParquetDataset(ParquetDataset):
    """``pandas.ParquetDataset`` whose versions appear whole or not at all.

    Example catalog entry::

        pretrain_history:
          type: hindsight_rl.datasets.AtomicParquetDataset
          filepath: data/07_model_output/pretrain_history.parquet
          versioned: true
    """

    def save(self, data: pd.DataFrame) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)

        def write(temporary: str) -> None:
            with self._fs.open(temporary, **self._fs_open_args_save) as file:
                data.to_parquet(file, **self._save_args)

        publish_atomically(self._fs, path, write)
        self._invalidate_cache()


class TrajectoryDataset(AtomicParquetDataset):
    """A trajectory table (DESIGN.md): checked on save, so a broken table is never written,
    and on load, so a damaged or hand-edited file fails with the problem named before a
    node trains on it."""

    def load(self) -> pd.DataFrame:
        table = super().load()
        validate_table(table, source=get_filepath_str(self._get_load_path(), self._protocol))
        return table

    def save(self, data: pd.DataFrame) -> None:
        validate_table(data, source=f"{self._filepath} (being saved)")
        super().save(data)
