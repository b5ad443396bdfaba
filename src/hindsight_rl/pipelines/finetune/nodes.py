"""Nodes of the fine-tune stage: both arms train every configured seed on the same budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.checkpoints import Checkpoints, checkpoints_for
from hindsight_rl.core.config import (
    CollectConfig,
    EvalConfig,
    RuntimeConfig,
    TargetConfig,
    from_mapping,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts
from hindsight_rl.core.training import (
    curve_seeds,
    finetune_from,
    network_config_of,
    train_from_scratch,
)


def finetune(pretrained_policy: Policy, hindsight_dataset: pd.DataFrame,
             target: dict[str, Any], evaluation: dict[str, Any], runtime: dict[str, Any]
             ) -> tuple[dict[str, Policy], pd.DataFrame]:
    """Transfer the pretrained network, freeze the configured parts and fine-tune it on the
    target with DQN plus the hindsight return-to-go loss, once per training seed.

    The hindsight dataset preloads the replay buffer and counts against the step budget.
    Interrupted seeds resume from their training checkpoints (``runtime.checkpoint_dir``).
    """
    config = from_mapping(TargetConfig, target, "target")
    seeds = _curve_seeds(config, evaluation)
    return _per_seed(config, lambda seed: finetune_from(
        pretrained_policy, config.env, config.dqn, config.finetune, seed, hindsight_dataset,
        seeds, label=f"finetune {config.env.id} seed {seed}",
        checkpoints=_checkpoints(runtime)))


def train_scratch(pretrained_policy: Policy, target: dict[str, Any], evaluation: dict[str, Any],
                  runtime: dict[str, Any]) -> tuple[dict[str, Policy], pd.DataFrame]:
    """The control: same network shape, budget and seeds, nothing transferred (only the
    pretrained network's layer widths are read). Its replay buffer starts from
    uniform-random rollouts as large as the hindsight dataset."""
    config = from_mapping(TargetConfig, target, "target")
    seeds = _curve_seeds(config, evaluation)
    sizes = env_info(config.env)
    network_config = network_config_of(pretrained_policy.network)

    def one_seed(seed: int) -> tuple[Policy, pd.DataFrame]:
        uniform = CollectConfig(steps=config.collect.steps, policy="uniform", seed=seed)
        act = behaviour_policy(uniform, sizes.n_actions, None, np.random.default_rng(seed))
        warm_start = collect_rollouts(config.env, uniform.steps, act, seed)
        return train_from_scratch(config.env, network_config, config.dqn, seed, warm_start,
                                  seeds, label=f"scratch {config.env.id} seed {seed}",
                                  checkpoints=_checkpoints(runtime))

    return _per_seed(config, one_seed)


def _checkpoints(runtime: dict[str, Any]) -> Checkpoints | None:
    return checkpoints_for(from_mapping(RuntimeConfig, runtime, "runtime"))


def _curve_seeds(config: TargetConfig, evaluation: dict[str, Any]) -> list[int]:
    eval_config = from_mapping(EvalConfig, evaluation, "evaluation")
    return curve_seeds(eval_config.seed + eval_config.episodes, config.dqn.eval_episodes)


def _per_seed(config: TargetConfig,
              train_one: Callable[[int], tuple[Policy, pd.DataFrame]]
              ) -> tuple[dict[str, Policy], pd.DataFrame]:
    """Run ``train_one`` for every training seed; policies keyed ``seed_<n>``, histories
    stacked with a ``seed`` column."""
    policies, histories = {}, []
    for seed in config.seeds:
        policy, history = train_one(seed)
        policies[f"seed_{seed}"] = policy
        histories.append(history.assign(seed=seed))
    return policies, pd.concat(histories, ignore_index=True)
