"""Retrain stage: champion/challenger promotion of a freshly fine-tuned policy."""

from hindsight_rl.pipelines.retrain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
