"""Kedro dataset classes of hindsight-rl."""

from hindsight_rl.datasets.parquet_dataset import AtomicParquetDataset, TrajectoryDataset
from hindsight_rl.datasets.policy_file_dataset import PolicyFileDataset

__all__ = ["AtomicParquetDataset", "PolicyFileDataset", "TrajectoryDataset"]
