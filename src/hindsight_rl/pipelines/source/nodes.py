"""Nodes of the source stage: thin wrappers that turn parameters into core calls."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from hindsight_rl.core.checkpoints import checkpoints_for
from hindsight_rl.core.comparison import eval_seeds, score_policies
from hindsight_rl.core.config import EvalConfig, RuntimeConfig, SourceConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.rollouts import behaviour_policy, collect_rollouts, trajectory_attrs
from hindsight_rl.core.training import curve_seeds, train_from_scratch
from hindsight_rl.core.trajectories import from_table, to_table

logger = logging.getLogger(__name__)


def collect_source_rollouts(source: SourceConfig) -> pd.DataFrame:
    """Roll out the behaviour policy (uniform by default) on the source task (a
    goal-conditioned one's desired goal in ``goal_i`` columns, as on a target).

    These transitions warm-start the pretraining replay buffer and fix the observation
    normalisation of the source network.
    """
    config = source
    rng = np.random.default_rng(config.collect.seed)
    act = behaviour_policy(config.collect, env_info(config.env), None, rng)
    table = to_table(collect_rollouts(config.env, config.collect.steps, act, config.collect.seed),
                     config.env.goal_width)
    table.attrs = trajectory_attrs(config.env, config.collect, behaviour_sha256=None)
    return table


def pretrain(source_rollouts: pd.DataFrame, source: SourceConfig, evaluation: EvalConfig,
             runtime: RuntimeConfig) -> tuple[Policy, pd.DataFrame]:
    """Double DQN on the source task, warm-started from the source rollouts.

    Returns the trained policy (kept in memory for ``export_weights``) and its training
    history: greedy return per learning-curve point, return per episode, loss per burst.
    An interrupted run resumes from its training checkpoint (``runtime.checkpoint_dir``).
    """
    [(policy, history)] = train_from_scratch(
        source.env, source.network, source.training, {source.seed: from_table(source_rollouts)},
        curve_seeds(evaluation, source.training.eval_episodes), label="pretrain",
        checkpoints=checkpoints_for(runtime))
    return policy, history.assign(seed=source.seed)


def export_weights(source_q_network: Policy, evaluation: EvalConfig) -> Policy:
    """Score the pretrained network on held-out seeds and stamp the score into its
    provenance; the catalog writes it as a versioned policy file."""
    returns = score_policies({"pretrained": source_q_network}, source_q_network.env,
                             evaluation)["pretrained"]
    logger.info("pretrained policy: %.1f ± %.1f over %d greedy episodes on %s",
                returns.mean(), returns.std(), len(returns), source_q_network.env.id)
    score = {"episodes": len(returns), "first_seed": eval_seeds(evaluation)[0],
             "mean": float(returns.mean()), "std": float(returns.std())}
    return replace(source_q_network,
                   provenance={**source_q_network.provenance, "evaluation": score})
