"""Source stage: rollouts on the source task, DQN pretraining, policy-file export."""

from hindsight_rl.pipelines.source.pipeline import create_pipeline

__all__ = ["create_pipeline"]
