"""Nodes of the fine-tune stage: one training seed of each arm, on the same budget."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hindsight_rl.core.checkpoints import Checkpoints, checkpoints_for
from hindsight_rl.core.config import EvalConfig, RuntimeConfig, TargetConfig, from_mapping
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.training import (
    curve_seeds,
    finetune_from,
    network_config_of,
    train_from_scratch,
    uniform_warm_start,
)


def finetune(pretrained_policy: Policy, hindsight_dataset: pd.DataFrame,
             target: dict[str, Any], evaluation: dict[str, Any], runtime: dict[str, Any],
             seed: int) -> tuple[Policy, pd.DataFrame]:
    """Transfer the pretrained network, freeze the configured parts and fine-tune it on the
    target with DQN plus the hindsight return-to-go loss, for one training seed.

    The hindsight dataset preloads the replay buffer and counts against the step budget.
    An interrupted run resumes from its training checkpoint (``runtime.checkpoint_dir``).
    """
    config = from_mapping(TargetConfig, target, "target")
    policy, history = finetune_from(
        pretrained_policy, config.env, config.dqn, config.finetune, seed, hindsight_dataset,
        _curve_seeds(config, evaluation), label=f"finetune {config.env.id} seed {seed}",
        checkpoints=_checkpoints(runtime), her=config.her)
    return policy, history.assign(seed=seed)


def train_scratch(pretrained_policy: Policy, target: dict[str, Any], evaluation: dict[str, Any],
                  runtime: dict[str, Any], seed: int) -> tuple[Policy, pd.DataFrame]:
    """The control for one training seed: same network shape, budget and seed, nothing
    transferred (only the pretrained network's layer widths are read). Its replay buffer
    starts from uniform-random rollouts as large as the hindsight dataset."""
    config = from_mapping(TargetConfig, target, "target")
    warm_start = uniform_warm_start(config.env, config.collect.steps, seed)
    policy, history = train_from_scratch(
        config.env, network_config_of(pretrained_policy.network), config.dqn, seed,
        warm_start, _curve_seeds(config, evaluation),
        label=f"scratch {config.env.id} seed {seed}", checkpoints=_checkpoints(runtime))
    return policy, history.assign(seed=seed)


def _checkpoints(runtime: dict[str, Any]) -> Checkpoints | None:
    return checkpoints_for(from_mapping(RuntimeConfig, runtime, "runtime"))


def _curve_seeds(config: TargetConfig, evaluation: dict[str, Any]) -> list[int]:
    return curve_seeds(from_mapping(EvalConfig, evaluation, "evaluation"),
                       config.dqn.eval_episodes)
