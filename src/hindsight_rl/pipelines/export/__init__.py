"""Export stage: each target's hindsight dataset as a Minari dataset."""

from hindsight_rl.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
