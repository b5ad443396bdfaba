"""Kedro runners of hindsight-rl."""

from hindsight_rl.runners.dask_runner import DaskRunner

__all__ = ["DaskRunner"]
