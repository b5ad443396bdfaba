"""Transfer suite: every source -> target pair of DAG_SHAPE["transfer_suite"], one report."""

from hindsight_rl.pipelines.suite.pipeline import create_pipeline

__all__ = ["create_pipeline"]
