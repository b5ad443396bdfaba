"""Hyperparameter search: Optuna trials of a target's DQN settings, trained from scratch."""

from hindsight_rl.pipelines.tune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
