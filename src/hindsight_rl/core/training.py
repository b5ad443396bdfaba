"""The three ways a policy is trained here: from scratch (pretraining and the control arm),
and by fine-tuning a transferred network on hindsight-labelled target data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hindsight_rl import __version__
from hindsight_rl.core.checkpoints import Checkpoints
from hindsight_rl.core.config import (
    DQNConfig,
    EnvConfig,
    EvalConfig,
    FinetuneConfig,
    HERConfig,
    NetworkConfig,
    TargetConfig,
)
from hindsight_rl.core.dqn import CurveCallback, Member, TrainResult, WarmStart, train_dqn
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.networks import QNetwork, observation_normaliser, transfer_parts
from hindsight_rl.core.policy_file import Policy, sha256_of
from hindsight_rl.core.rollouts import collect_rollouts, uniform_policy
from hindsight_rl.core.trajectories import Transitions, env_steps_of, from_table


def warm_start_from_table(table: pd.DataFrame) -> WarmStart:
    """Replay preload from a trajectory table, with hindsight labels when it has them."""
    transitions = from_table(table)
    labelled = "return_to_go" in table.columns and "rtg_valid" in table.columns
    relabelled = (table["relabeled"].to_numpy(bool) if "relabeled" in table.columns
                  else np.zeros(len(table), bool))
    return WarmStart(
        obs=transitions.obs, action=transitions.action, reward=transitions.reward,
        next_obs=transitions.next_obs, terminated=transitions.terminated,
        return_to_go=table["return_to_go"].to_numpy(np.float32) if labelled else None,
        rtg_valid=table["rtg_valid"].to_numpy(np.float32) if labelled else None,
        env_steps=env_steps_of(table),
        episode_id=np.where(relabelled, -1 - np.arange(len(table)), transitions.episode_id))


def uniform_warm_start(env_config: EnvConfig, steps: int, seed: int) -> Transitions:
    """Uniform-random rollouts: the scratch control's replay preload, as large as the
    hindsight dataset the fine-tuned arm starts from."""
    act = uniform_policy(env_info(env_config), np.random.default_rng(seed))
    return collect_rollouts(env_config, steps, act, seed)


def hindsight_as_configured(table: pd.DataFrame, target: TargetConfig) -> pd.DataFrame:
    """The hindsight dataset with the relabelling ``target.her`` asks for: its episodes
    relabelled afresh (seeded by ``collect.seed``, as at collection), or none at all."""
    episodes = table[~table["relabeled"]] if "relabeled" in table.columns else table
    if target.her.k == 0:
        return episodes.drop(columns="relabeled", errors="ignore").reset_index(drop=True)
    return label_hindsight(from_table(episodes), target.dqn.gamma, target.env.success,
                           env_info(target.env).max_episode_steps, target.env.goal,
                           target.her.k, target.collect.seed)


def fresh_network(env_config: EnvConfig, network_config: NetworkConfig, seed: int,
                  observations: np.ndarray) -> QNetwork:
    """A randomly initialised network whose input normalisation fits ``observations``."""
    info = env_info(env_config)
    shift, scale = observation_normaliser(info.obs_low, info.obs_high, observations)
    torch.manual_seed(seed)
    return QNetwork(info.obs_dim, info.n_actions, network_config, shift, scale)


def transferred_network(pretrained: Policy, env_config: EnvConfig, seed: int,
                        observations: np.ndarray) -> tuple[QNetwork, list[str]]:
    """The target network: every part of ``pretrained`` whose shape fits (the encoder with
    its input normalisation, which its weights only make sense with), the rest fresh."""
    source = pretrained.network
    network = fresh_network(env_config, source.config, seed, observations)
    return network, transfer_parts(source, network)


def probe_seeds(evaluation: EvalConfig) -> list[int]:
    """Seeds of the transfer probe's episodes: the block just below the final evaluation's."""
    return list(range(evaluation.seed - evaluation.probe_episodes, evaluation.seed))


def curve_seeds(evaluation: EvalConfig, episodes: int) -> list[int]:
    """Seeds of the learning-curve episodes: a block of their own right after the final
    evaluation's, far from training seeds."""
    first = evaluation.seed + evaluation.episodes
    return list(range(first, first + episodes))


def train_from_scratch(env_config: EnvConfig, network_config: NetworkConfig,
                       dqn_config: DQNConfig, warm_starts: Mapping[int, Transitions],
                       eval_seeds: Sequence[int], label: str,
                       checkpoints: Checkpoints | None = None,
                       on_curve: CurveCallback | None = None
                       ) -> list[tuple[Policy, pd.DataFrame]]:
    """DQN on fresh networks, one per seed of ``warm_starts``, each with its replay buffer
    preloaded with that seed's transitions (uniform rollouts); every seed shares the
    updates (:func:`train_dqn`, which calls ``on_curve`` at every learning-curve point).
    Returns each seed's policy and history, in seed order."""
    members = [Member(fresh_network(env_config, network_config, seed, data.obs), seed,
                      WarmStart(data.obs, data.action, data.reward, data.next_obs,
                                data.terminated, episode_id=data.episode_id))
               for seed, data in warm_starts.items()]
    results = train_dqn(members, env_config, dqn_config, eval_seeds, label=label,
                        checkpoints=checkpoints, on_curve=on_curve)
    return [(_policy(result, env_config, dqn_config, member.seed, frozen=(), parent=None),
             result.history) for member, result in zip(members, results, strict=True)]


def finetune_from(pretrained: Policy, env_config: EnvConfig, dqn_config: DQNConfig,
                  finetune_config: FinetuneConfig, seeds: Sequence[int], hindsight: pd.DataFrame,
                  eval_seeds: Sequence[int], label: str,
                  checkpoints: Checkpoints | None = None,
                  her: HERConfig | None = None) -> list[tuple[Policy, pd.DataFrame]]:
    """Transfer ``pretrained`` once per seed, freeze the configured parts, fine-tune with
    hindsight data (relabelling each new episode's goals too when ``her.k`` > 0); every
    seed shares the updates. Returns each seed's policy and history, in seed order."""
    warm_start = warm_start_from_table(hindsight)
    transfers = [transferred_network(pretrained, env_config, seed, warm_start.obs)
                 for seed in seeds]
    members = [Member(network, seed, warm_start)
               for (network, _), seed in zip(transfers, seeds, strict=True)]
    results = train_dqn(members, env_config, dqn_config, eval_seeds, label=label,
                        checkpoints=checkpoints, her_k=0 if her is None else her.k,
                        finetune=finetune_config, transferred=transfers[0][1])
    parent = sha256_of(pretrained)
    return [(_policy(result, env_config, dqn_config, member.seed, result.frozen, parent),
             result.history) for member, result in zip(members, results, strict=True)]


def _policy(result: TrainResult, env_config: EnvConfig, dqn_config: DQNConfig, seed: int,
            frozen: Sequence[str], parent: str | None) -> Policy:
    return Policy(network=result.network, env=env_config, gamma=dqn_config.gamma,
                  frozen=tuple(frozen),
                  provenance={"seed": seed, "env_steps": result.env_steps,
                              "parent_sha256": parent, "package_version": __version__})
