"""Ablation stage: every arm of hindsight fine-tuning on every listed target, several seeds."""

from hindsight_rl.pipelines.ablation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
