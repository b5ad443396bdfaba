"""Kedro dataset classes of hindsight-rl: every one writes its versions atomically, checks
its artefact's contract where it has one, and loads the version its own run wrote."""

from hindsight_rl.datasets.binary_file import BinaryFileDataset, GifDataset
from hindsight_rl.datasets.contracts import ArtefactError
from hindsight_rl.datasets.minari_dataset import MinariDataset
from hindsight_rl.datasets.parquet_dataset import (
    AblationRunDataset,
    AtomicParquetDataset,
    HistoryDataset,
    TrajectoryDataset,
)
from hindsight_rl.datasets.policy_file_dataset import PolicyFileDataset
from hindsight_rl.datasets.report_datasets import (
    AtomicJSONDataset,
    AtomicMatplotlibDataset,
    AtomicTextDataset,
    HTMLReportDataset,
)

__all__ = ["AblationRunDataset", "ArtefactError", "AtomicJSONDataset", "AtomicMatplotlibDataset",
           "AtomicParquetDataset", "AtomicTextDataset", "BinaryFileDataset", "GifDataset",
           "HTMLReportDataset", "HistoryDataset", "MinariDataset", "PolicyFileDataset",
           "TrajectoryDataset"]
