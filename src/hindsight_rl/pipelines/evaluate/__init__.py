"""Evaluate stage: fine-tuned vs scratch per target, with metrics, plots and a report."""

from hindsight_rl.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
