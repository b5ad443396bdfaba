"""Target stage: hindsight dataset collected on each target with the transferred network."""

from hindsight_rl.pipelines.target.pipeline import create_pipeline

__all__ = ["create_pipeline"]
