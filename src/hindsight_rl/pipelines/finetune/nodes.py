"""Nodes of the fine-tune stage: each arm for a group of training seeds, on the same budget."""

from __future__ import annotations

from collections.abc import Sequence
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
             seeds: tuple[int, ...]) -> list[Any]:
    """Transfer the pretrained network, freeze the configured parts and fine-tune it on the
    target with DQN plus the hindsight return-to-go loss, once per training seed (the seeds
    share each update; each trains as it would alone).

    The hindsight dataset preloads the replay buffers and counts against the step budget.
    An interrupted run resumes from its training checkpoint (``runtime.checkpoint_dir``).
    Returns each seed's policy and history in turn.
    """
    config = from_mapping(TargetConfig, target, "target")
    runs = finetune_from(
        pretrained_policy, config.env, config.dqn, config.finetune, seeds, hindsight_dataset,
        _curve_seeds(config, evaluation), label=f"finetune {config.env.id}",
        checkpoints=_checkpoints(runtime), her=config.her)
    return _per_seed_outputs(runs, seeds)


def train_scratch(pretrained_policy: Policy, target: dict[str, Any], evaluation: dict[str, Any],
                  runtime: dict[str, Any], seeds: tuple[int, ...]) -> list[Any]:
    """The control for each training seed: same network shape, budget and seed, nothing
    transferred (only the pretrained network's layer widths are read). Each replay buffer
    starts from uniform-random rollouts as large as the hindsight dataset."""
    config = from_mapping(TargetConfig, target, "target")
    runs = train_from_scratch(
        config.env, network_config_of(pretrained_policy.network), config.dqn,
        {seed: uniform_warm_start(config.env, config.collect.steps, seed) for seed in seeds},
        _curve_seeds(config, evaluation), label=f"scratch {config.env.id}",
        checkpoints=_checkpoints(runtime))
    return _per_seed_outputs(runs, seeds)


def _per_seed_outputs(runs: list[tuple[Policy, pd.DataFrame]], seeds: Sequence[int]
                      ) -> list[Any]:
    """``[policy, history]`` of each seed in turn, the histories tagged with their seed."""
    return [output for (policy, history), seed in zip(runs, seeds, strict=True)
            for output in (policy, history.assign(seed=seed))]


def _checkpoints(runtime: dict[str, Any]) -> Checkpoints | None:
    return checkpoints_for(from_mapping(RuntimeConfig, runtime, "runtime"))


def _curve_seeds(config: TargetConfig, evaluation: dict[str, Any]) -> list[int]:
    return curve_seeds(from_mapping(EvalConfig, evaluation, "evaluation"),
                       config.dqn.eval_episodes)
