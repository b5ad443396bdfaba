"""Nodes of the target stage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hindsight_rl.core.config import TargetConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.policy_file import Policy, sha256_of
from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts, trajectory_attrs
from hindsight_rl.core.training import transferred_network


def collect_target_rollouts(pretrained_policy: Policy, target: TargetConfig) -> pd.DataFrame:
    """Roll out the transferred network (Boltzmann over its Q-values by default) on the
    target task and label every finished episode in hindsight: return-to-go, episode
    return, success; on a goal-reaching target with ``her.k`` > 0, also relabelled copies of
    every transition (HER). These rows seed the fine-tuning replay buffer."""
    info = env_info(target.env)
    network, _ = transferred_network(pretrained_policy, target.env, target.collect.seed,
                                     np.zeros((0, info.obs_dim), np.float32))
    rng = np.random.default_rng(target.collect.seed)
    act = behaviour_policy(target.collect, info.n_actions, network, rng)
    transitions = collect_rollouts(target.env, target.collect.steps, act, target.collect.seed)
    table = label_hindsight(transitions, target.dqn.gamma, target.env.success,
                            info.max_episode_steps, target.env.goal, target.her.k,
                            target.collect.seed)
    behaviour = Policy(network=network, env=target.env, gamma=target.dqn.gamma)
    table.attrs = trajectory_attrs(target.env, target.collect, sha256_of(behaviour))
    return table
