"""Nodes of the target stage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.config import EvalConfig, TargetConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.plan import choose_transfer, probe_sources
from hindsight_rl.core.policy_file import Policy, sha256_of
from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts, trajectory_attrs
from hindsight_rl.core.training import probe_seeds, transferred_network


def plan_transfer(target: TargetConfig, evaluation: EvalConfig, *candidates: Policy,
                  sources: tuple[str, ...]) -> tuple[pd.DataFrame, Policy, dict[str, Any]]:
    """Probe every candidate source on the target and choose one and how to fine-tune from
    it (:mod:`hindsight_rl.core.plan`); then roll out its transferred network (Boltzmann
    over its Q-values by default) and label every finished episode in hindsight:
    return-to-go, episode return, success; on a goal-reaching target with ``her.k`` > 0,
    also relabelled copies of every transition (HER). These rows seed the fine-tuning
    replay buffer. Returns the hindsight dataset, the chosen source's policy and the plan."""
    policies = dict(zip(sources, candidates, strict=True))
    probes, chance = probe_sources(policies, target.env, probe_seeds(evaluation))
    chosen = choose_transfer(probes, chance, target)
    source = policies[chosen.source]
    info = env_info(target.env)
    network, _ = transferred_network(source, target.env, target.collect.seed,
                                     np.zeros((0, info.obs_dim), np.float32))
    rng = np.random.default_rng(target.collect.seed)
    act = behaviour_policy(target.collect, info, network, rng)
    transitions = collect_rollouts(target.env, target.collect.steps, act, target.collect.seed)
    table = label_hindsight(transitions, target.dqn.gamma, target.env.success,
                            info.max_episode_steps, target.env.goal, target.her.k,
                            target.collect.seed)
    behaviour = Policy(network=network, env=target.env, gamma=target.dqn.gamma)
    table.attrs = trajectory_attrs(target.env, target.collect, sha256_of(behaviour))
    return table, source, {**chosen.record(), "source_sha256": sha256_of(source)}
