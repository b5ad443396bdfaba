"""Parquet tables saved atomically, and trajectory tables and training histories checked on
every load and save.

All extend kedro-datasets' ``pandas.ParquetDataset`` (so versioning, fsspec paths,
``load_args``/``save_args`` and kedro-viz previews work as users know them) and change only
how a version is written: to a temporary name first, renamed into place when complete.
"""

from __future__ import annotations

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import ParquetDataset

from hindsight_rl.core.artefacts import (
    HISTORY_METRICS,
    JUDGE_METRIC,
    VERSION_ATTR,
    validate_history,
)
from hindsight_rl.core.trajectories import validate_table
from hindsight_rl.datasets.atomic import publish_atomically
from hindsight_rl.datasets.contracts import RunOwnedVersions, as_artefact_errors


class AtomicParquetDataset(RunOwnedVersions, ParquetDataset):
    """``pandas.ParquetDataset`` whose versions appear whole or not at all.

    Example catalog entry::

        pretrain_history:
          type: hindsight_rl.datasets.AtomicParquetDataset
          filepath: data/07_model_output/pretrain_history.parquet
          versioned: true
    """

    def load(self) -> pd.DataFrame:
        table = super().load()
        if (version := self.loaded_version()) is not None:
            table.attrs[VERSION_ATTR] = version
        return table

    def save(self, data: pd.DataFrame) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        data = data.copy(deep=False)
        data.attrs.pop(VERSION_ATTR, None)  # a version is where a table is, not in it

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
        with as_artefact_errors():
            validate_table(table, source=get_filepath_str(self._get_load_path(),
                                                          self._protocol))
        return table

    def save(self, data: pd.DataFrame) -> None:
        with as_artefact_errors():
            validate_table(data, source=f"{self._filepath} (being saved)")
        super().save(data)


class HistoryDataset(AtomicParquetDataset):
    """A training history (``env_step``, ``metric``, ``value``, ``seed``), checked on save and
    load: a renamed column, a non-finite value or a metric nobody records fails naming the
    file, instead of a learning curve that quietly loses its points.

    Example catalog entry::

        pretrain_history:
          type: hindsight_rl.datasets.HistoryDataset
          filepath: data/07_model_output/pretrain_history.parquet
          versioned: true
    """

    METRICS: tuple[str, ...] = HISTORY_METRICS
    TEXT_COLUMNS: tuple[str, ...] = ()

    def load(self) -> pd.DataFrame:
        table = super().load()
        self._validate(table, get_filepath_str(self._get_load_path(), self._protocol))
        return table

    def save(self, data: pd.DataFrame) -> None:
        self._validate(data, f"{self._filepath} (being saved)")
        super().save(data)

    def _validate(self, table: pd.DataFrame, source: str) -> None:
        with as_artefact_errors():
            validate_history(table, source, self.METRICS, self.TEXT_COLUMNS)


class AblationRunDataset(HistoryDataset):
    """An ablation run: its history plus the final policy's ``judge_return`` rows, each row
    tagged with its ``arm``."""

    METRICS = (*HISTORY_METRICS, JUDGE_METRIC)
    TEXT_COLUMNS = ("arm",)
