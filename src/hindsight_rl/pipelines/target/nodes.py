"""Nodes of the target stage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hindsight_rl.core.config import EvalConfig, TargetConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.plan import choose_transfer, probe_continuous_sources, probe_sources
from hindsight_rl.core.policy_file import Policy, sha256_of
from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts, trajectory_attrs
from hindsight_rl.core.training import (
    continuous_behaviour,
    probe_seeds,
    transferred_actor_critic,
    transferred_network,
)


def plan_transfer(target: TargetConfig, evaluation: EvalConfig, *candidates: Policy,
                  sources: tuple[str, ...]) -> tuple[pd.DataFrame, Policy, dict[str, Any]]:
    """Probe every candidate source on the target and choose one and how to fine-tune from
    it (:mod:`hindsight_rl.core.plan`); then roll out its transferred network (Boltzmann
    over its Q-values by default; on a continuous target, the transferred actor's samples
    or the source acting through ``source_actions``) and label every finished episode in hindsight:
    return-to-go, episode return, success; on a goal-reaching target with ``her.k`` > 0,
    also relabelled copies of every transition (HER). These rows seed the fine-tuning
    replay buffer. Returns the hindsight dataset, the chosen source's policy and the plan."""
    policies = dict(zip(sources, candidates, strict=True))
    continuous = target.algorithm == "sac"
    if continuous:
        probes, chance = probe_continuous_sources(policies, target, probe_seeds(evaluation))
    else:
        probes, chance = probe_sources(policies, target.env, probe_seeds(evaluation),
                                       target.encoder, target.dqn.acting_temperatures)
    chosen = choose_transfer(probes, chance, target)
    source = policies[chosen.source]
    info = env_info(target.env)
    observations = np.zeros((0, info.obs_dim), np.float32)
    rng = np.random.default_rng(target.collect.seed)
    if continuous:
        network, _, _ = transferred_actor_critic(source, target.env, target.sac,
                                                 target.collect.seed, observations)
        act = continuous_behaviour(source, network, target.source_actions, target.collect,
                                   rng)
    else:
        network, _ = transferred_network(source, target.env, target.collect.seed,
                                         observations, target.encoder)
        act = behaviour_policy(target.collect, info, network, rng)
    transitions = collect_rollouts(target.env, target.collect.steps, act, target.collect.seed)
    table = label_hindsight(transitions, target.training.gamma, target.env.success,
                            info.max_episode_steps, target.env.goal, target.her.k,
                            target.collect.seed)
    acts_itself = continuous and target.source_actions is not None and isinstance(
        source.network, QNetwork)
    behaviour = source if acts_itself else Policy(network=network, env=target.env,
                                                  gamma=target.training.gamma)
    table.attrs = trajectory_attrs(target.env, target.collect, sha256_of(behaviour))
    return table, source, {**chosen.record(), "source_sha256": sha256_of(source)}
