"""Behaviour policies and rollout collection into :class:`Transitions`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hindsight_rl.core.config import CollectConfig, EnvConfig
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.progress import StepProgress
from hindsight_rl.core.trajectories import Transitions, transitions_from_lists

QFunction = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations (B, obs_dim) to Q-values (B, n_actions)."""


def q_function(network: QNetwork) -> QFunction:
    """Numpy-in, numpy-out Q-values of a one-member network's current weights (numpy views of
    its parameters: acting asks for one observation at a time, where torch's per-call
    overhead would be several times the arithmetic)."""
    return network.numpy_forward().q_function(0)


def boltzmann_probabilities(q_values: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(Q/τ)`` along the last axis, stable for large Q/τ."""
    logits = q_values / temperature
    logits = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def behaviour_policy(config: CollectConfig, n_actions: int, network: QNetwork | None,
                     rng: np.random.Generator) -> Callable[[np.ndarray], int]:
    """The configured collection policy as ``obs -> action``."""
    if config.policy == "uniform" or network is None:
        return lambda obs: int(rng.integers(n_actions))
    q_values = q_function(network)
    if config.policy == "epsilon_greedy":
        def epsilon_greedy(obs: np.ndarray) -> int:
            if rng.random() < config.epsilon:
                return int(rng.integers(n_actions))
            return int(q_values(obs[None])[0].argmax())
        return epsilon_greedy

    def boltzmann(obs: np.ndarray) -> int:
        probabilities = boltzmann_probabilities(q_values(obs[None])[0], config.temperature)
        return int(rng.choice(n_actions, p=probabilities))
    return boltzmann


def collect_rollouts(env_config: EnvConfig, steps: int, act: Callable[[np.ndarray], int],
                     seed: int) -> Transitions:
    """Step one environment ``steps`` times with ``act``.

    The episode still running when the budget is spent is marked ``truncated``: it was
    cut, not ended, exactly like a time limit.
    """
    env = make_env(env_config)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    columns: dict[str, list] = {k: [] for k in ("episode_id", "t", "obs", "action", "reward",
                                                "next_obs", "terminated", "truncated")}
    episode, t, episode_return = 0, 0, 0.0
    with StepProgress(f"collect {env_config.id}", steps) as progress:
        for step in range(steps):
            action = act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            truncated = bool(truncated or (step == steps - 1 and not terminated))
            for key, value in (("episode_id", episode), ("t", t), ("obs", obs), ("action", action),
                               ("reward", reward), ("next_obs", next_obs),
                               ("terminated", terminated), ("truncated", truncated)):
                columns[key].append(value)
            episode_return += float(reward)
            if terminated or truncated:
                progress.update(step + 1, episode_return)
                episode, t, episode_return = episode + 1, 0, 0.0
                obs, _ = env.reset()
            else:
                obs, t = next_obs, t + 1
    env.close()
    return transitions_from_lists(**columns)


def trajectory_attrs(env_config: EnvConfig, collect: CollectConfig,
                     behaviour_sha256: str | None) -> dict[str, object]:
    """Provenance stored in the Parquet file's key-value metadata (pandas ``attrs``)."""
    return {"env_id": env_config.id, "make_kwargs": dict(env_config.make_kwargs),
            "overrides": dict(env_config.overrides), "seed": collect.seed,
            "behaviour_policy": collect.policy, "behaviour_sha256": behaviour_sha256}
