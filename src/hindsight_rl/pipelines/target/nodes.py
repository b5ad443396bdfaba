"""Nodes of the target stage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.config import TargetConfig, from_mapping
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.policy_file import Policy, sha256_of
from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts, trajectory_attrs
from hindsight_rl.core.training import transferred_network


def collect_target_rollouts(pretrained_policy: Policy, target: dict[str, Any]) -> pd.DataFrame:
    """Roll out the transferred network (Boltzmann over its Q-values by default) on the
    target task and label every finished episode in hindsight: return-to-go, episode
    return, success; on a goal-reaching target with ``her.k`` > 0, also relabelled copies of
    every transition (HER). These rows seed the fine-tuning replay buffer."""
    config = from_mapping(TargetConfig, target, "target")
    info = env_info(config.env)
    network, _ = transferred_network(pretrained_policy, config.env, config.collect.seed,
                                     np.zeros((0, info.obs_dim), np.float32))
    rng = np.random.default_rng(config.collect.seed)
    act = behaviour_policy(config.collect, info.n_actions, network, rng)
    transitions = collect_rollouts(config.env, config.collect.steps, act, config.collect.seed)
    table = label_hindsight(transitions, config.dqn.gamma, config.env.success,
                            info.max_episode_steps, config.env.goal, config.her.k,
                            config.collect.seed)
    behaviour = Policy(network=network, env=config.env, gamma=config.dqn.gamma)
    table.attrs = trajectory_attrs(config.env, config.collect, sha256_of(behaviour))
    return table
