"""The three ways a policy is trained here: from scratch (pretraining and the control arm),
and by fine-tuning a transferred network on hindsight-labelled target data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hindsight_rl import __version__
from hindsight_rl.core.actor_critic import GaussianActor, TwinCritic, transfer_into
from hindsight_rl.core.checkpoints import Checkpoints
from hindsight_rl.core.config import (
    CollectConfig,
    ConfigError,
    DQNConfig,
    Encoder,
    EnvConfig,
    EvalConfig,
    FinetuneConfig,
    HERConfig,
    NetworkConfig,
    SACConfig,
    TargetConfig,
    fine_tuning,
    with_encoder,
)
from hindsight_rl.core.dqn import CurveCallback, Member, TrainResult, WarmStart, train_dqn
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.networks import QNetwork, observation_normaliser, transfer_parts
from hindsight_rl.core.policy_file import Policy, sha256_of
from hindsight_rl.core.rollouts import (
    behaviour_policy,
    collect_rollouts,
    q_function,
    uniform_box,
    uniform_policy,
)
from hindsight_rl.core.sac import SACMember, train_sac
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
    return label_hindsight(from_table(episodes), target.training.gamma, target.env.success,
                           env_info(target.env).max_episode_steps, target.env.goal,
                           target.her.k, target.collect.seed)


def fresh_network(env_config: EnvConfig, network_config: NetworkConfig, seed: int,
                  observations: np.ndarray) -> QNetwork:
    """A randomly initialised network whose input normalisation fits ``observations``."""
    info = env_info(env_config)
    shift, scale = observation_normaliser(info.obs_low, info.obs_high, observations)
    torch.manual_seed(seed)
    return QNetwork(info.obs_dim, info.n_actions, network_config, shift, scale,
                    image_shape=info.image_shape)


def fresh_actor_critic(env_config: EnvConfig, network_config: NetworkConfig,
                       config: SACConfig, seed: int, observations: np.ndarray
                       ) -> tuple[GaussianActor, TwinCritic]:
    """A randomly initialised actor and twin critic whose input normalisation fits
    ``observations``, for a continuous-action task."""
    info = env_info(env_config)
    shift, scale = observation_normaliser(info.obs_low, info.obs_high, observations)
    torch.manual_seed(seed)
    actor = GaussianActor(info.obs_dim, info.action_low, info.action_high, network_config,
                          shift, scale, log_std_init=config.log_std_init)
    critic = TwinCritic(info.obs_dim, info.action_low, info.action_high, network_config,
                        shift, scale)
    return actor, critic


def transferred_actor_critic(pretrained: Policy, env_config: EnvConfig, config: SACConfig,
                             seed: int, observations: np.ndarray
                             ) -> tuple[GaussianActor, TwinCritic, list[str]]:
    """The target's actor and critics: what fits of ``pretrained`` (a Q-network or an
    actor) carried over (:func:`~hindsight_rl.core.actor_critic.transfer_into`), the rest
    fresh."""
    actor, critic = fresh_actor_critic(env_config, pretrained.network.config, config, seed,
                                       observations)
    return actor, critic, transfer_into(pretrained.network, actor, critic)


def transferred_network(pretrained: Policy, env_config: EnvConfig, seed: int,
                        observations: np.ndarray, encoder: Encoder | None = None
                        ) -> tuple[QNetwork, list[str]]:
    """The target network (the source's shape, with ``encoder`` if given): every part of
    ``pretrained`` whose type and shape fit (the encoder with its input normalisation,
    which its weights only make sense with), the rest fresh."""
    source = pretrained.network
    network = fresh_network(env_config, with_encoder(source.config, encoder), seed,
                            observations)
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
                       dqn_config: DQNConfig | SACConfig, warm_starts: Mapping[int, Transitions],
                       eval_seeds: Sequence[int], label: str,
                       checkpoints: Checkpoints | None = None,
                       on_curve: CurveCallback | None = None
                       ) -> list[tuple[Policy, pd.DataFrame]]:
    """DQN (or SAC, given a :class:`SACConfig`) on fresh networks, one per seed of
    ``warm_starts``, each with its replay buffer preloaded with that seed's transitions
    (uniform rollouts); every seed shares the updates (:func:`train_dqn`,
    :func:`train_sac`, which call ``on_curve`` at every learning-curve point).
    Returns each seed's policy and history, in seed order."""
    preloads = {seed: WarmStart(data.obs, data.action, data.reward, data.next_obs,
                                data.terminated, episode_id=data.episode_id)
                for seed, data in warm_starts.items()}
    if isinstance(dqn_config, SACConfig):
        members = [SACMember(*fresh_actor_critic(env_config, network_config, dqn_config, seed,
                                                 data.obs), seed, preloads[seed])
                   for seed, data in warm_starts.items()]
        results = train_sac(members, env_config, dqn_config, eval_seeds, label=label,
                            checkpoints=checkpoints, on_curve=on_curve)
    else:
        members = [Member(fresh_network(env_config, network_config, seed, data.obs), seed,
                          preloads[seed]) for seed, data in warm_starts.items()]
        results = train_dqn(members, env_config, dqn_config, eval_seeds, label=label,
                            checkpoints=checkpoints, on_curve=on_curve)
    return [(_policy(result, env_config, dqn_config, member.seed, frozen=(), parent=None),
             result.history) for member, result in zip(members, results, strict=True)]


def finetune_from(pretrained: Policy, env_config: EnvConfig,
                  dqn_config: DQNConfig | SACConfig,
                  finetune_config: FinetuneConfig, seeds: Sequence[int], hindsight: pd.DataFrame,
                  eval_seeds: Sequence[int], label: str,
                  checkpoints: Checkpoints | None = None,
                  her: HERConfig | None = None,
                  encoder: Encoder | None = None) -> list[tuple[Policy, pd.DataFrame]]:
    """Transfer ``pretrained`` once per seed (into an actor and critics, given a
    :class:`SACConfig`; into a network with ``encoder``, if given), freeze the configured
    parts, fine-tune with hindsight data (relabelling each new episode's goals too when
    ``her.k`` > 0); every seed shares the updates. Returns each seed's policy and history,
    in seed order."""
    dqn_config = fine_tuning(dqn_config, finetune_config)
    warm_start = warm_start_from_table(hindsight)
    train = train_dqn
    if isinstance(dqn_config, SACConfig):
        train = train_sac
        dqn_config = with_source_temperature(dqn_config, pretrained)
        transfers = [transferred_actor_critic(pretrained, env_config, dqn_config, seed,
                                              warm_start.obs) for seed in seeds]
        members = [SACMember(actor, critic, seed, warm_start)
                   for (actor, critic, _), seed in zip(transfers, seeds, strict=True)]
    else:
        transfers = [transferred_network(pretrained, env_config, seed, warm_start.obs,
                                         encoder) for seed in seeds]
        members = [Member(network, seed, warm_start)
                   for (network, _), seed in zip(transfers, seeds, strict=True)]
    results = train(members, env_config, dqn_config, eval_seeds, label=label,
                    checkpoints=checkpoints, her_k=0 if her is None else her.k,
                    finetune=finetune_config, transferred=transfers[0][-1])
    parent = sha256_of(pretrained)
    return [(_policy(result, env_config, dqn_config, member.seed, result.frozen, parent),
             result.history) for member, result in zip(members, results, strict=True)]


def with_source_temperature(config: SACConfig, pretrained: Policy) -> SACConfig:
    """A tuned temperature starts where the SAC source's ended: the transferred actor's
    entropy is the source's, and SAC's usual start (α = 1) would push it to act at random
    before the critics know anything."""
    temperature = pretrained.provenance.get("temperature")
    if config.ent_coef != "auto" or not isinstance(temperature, float) or temperature <= 0:
        return config
    return config.model_copy(update={"ent_coef_init": temperature})


def _policy(result: TrainResult, env_config: EnvConfig, dqn_config: DQNConfig | SACConfig,
            seed: int,
            frozen: Sequence[str], parent: str | None) -> Policy:
    temperature = {} if result.temperature is None else {"temperature": result.temperature}
    return Policy(network=result.network, env=env_config, gamma=dqn_config.gamma,
                  frozen=tuple(frozen),
                  provenance={"seed": seed, "env_steps": result.env_steps,
                              "parent_sha256": parent, "package_version": __version__,
                              **temperature},
                  acting_temperature=result.acting_temperature)


def source_action_table(source_actions: Sequence[Sequence[float]],
                        source_n_actions: int | None, low: np.ndarray, high: np.ndarray
                        ) -> np.ndarray:
    """``source_actions`` as an array, after checking it fits both sides: one target action
    (inside the bounds ``low``..``high``) per action of a Discrete source
    (``source_n_actions``; None: the source is an actor, which needs no table)."""
    if source_n_actions is None:
        raise ConfigError("source_actions: set, but the source is an actor with continuous "
                          "actions of its own; set it to null")
    table = np.asarray(source_actions, np.float32)
    if table.shape != (source_n_actions, len(low)):
        raise ConfigError(f"source_actions: got {len(table)} actions of shape "
                          f"{table.shape[1:]}, expected one per source action "
                          f"({source_n_actions}) of {len(low)} entries each")
    if ((table < low) | (table > high)).any():
        raise ConfigError(f"source_actions: got {table.tolist()}, expected actions within "
                          f"the target's bounds {low.tolist()}..{high.tolist()}")
    return table


def continuous_behaviour(pretrained: Policy, actor: GaussianActor,
                         source_actions: Sequence[Sequence[float]] | None,
                         collect: CollectConfig | None, rng: np.random.Generator
                         ) -> Callable[[np.ndarray], np.ndarray]:
    """How a continuous target is acted on before fine-tuning (``collect`` None: greedily,
    for the probe; otherwise as configured, for the hindsight dataset): a Discrete source
    with ``source_actions`` acts itself, each of its actions standing for the target action
    it names (greedy, ε-greedy or Boltzmann over its Q-values); otherwise the transferred
    actor acts, its mean action greedily, a sample of its squashed Gaussian as configured.
    ``uniform`` collection draws uniformly within the bounds."""
    low, high = actor.action_low, actor.action_high
    if collect is not None and collect.policy == "uniform":
        return uniform_box(low, high, rng)
    if source_actions is not None:
        network = pretrained.network
        table = source_action_table(
            source_actions, network.n_actions if isinstance(network, QNetwork) else None,
            low, high)
        if collect is None:
            q_values = q_function(pretrained.network)
            return lambda obs: table[int(q_values(np.asarray(obs)[None])[0].argmax())]
        choose = behaviour_policy(collect, len(table), pretrained.network, rng)
        return lambda obs: table[choose(obs)]
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))

    def act(obs: np.ndarray) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(obs, np.float32)).view(1, 1, -1)
        with torch.no_grad():
            if collect is None:
                return actor.deterministic(batch)[0, 0].numpy()
            noise = torch.randn(1, 1, actor.action_dim, generator=generator)
            return actor.sample(batch, noise)[0][0, 0].numpy()
    return act
