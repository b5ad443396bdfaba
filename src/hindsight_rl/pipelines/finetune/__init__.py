"""Fine-tune stage: transferred network vs the from-scratch control, per target."""

from hindsight_rl.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
