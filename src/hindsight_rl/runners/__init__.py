"""Kedro runners of hindsight-rl."""

from hindsight_rl.runners.dask_runner import DaskRunner
from hindsight_rl.runners.parallel_runner import ParallelRunner

__all__ = ["DaskRunner", "ParallelRunner"]
