"""Behaviour policies and rollout collection into :class:`Transitions`.

An action is an ``int`` on a discrete task and a float32 vector inside the action bounds
on a continuous one (a 1-d ``Box``)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from hindsight_rl.core.config import CollectConfig, EnvConfig
from hindsight_rl.core.envs import EnvInfo, make_env
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.progress import StepProgress
from hindsight_rl.core.trajectories import Transitions, transitions_from_lists

QFunction = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations (B, obs_dim) to Q-values (B, n_actions)."""
Act = Callable[[np.ndarray], int | np.ndarray]
"""Maps one observation to one action: an index, or a vector of a continuous task."""


class BehaviourPolicyError(HindsightRLError, ValueError):
    """A behaviour policy that cannot act on the task (Q-values over continuous actions)."""


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


def behaviour_policy(config: CollectConfig, actions: int | EnvInfo | None,
                     network: QNetwork | None, rng: np.random.Generator) -> Act:
    """The configured collection policy as ``obs -> action``.

    ``actions`` is the number of discrete actions, or the env's :class:`EnvInfo` (which a
    continuous task needs: its bounds). ``policy: uniform``, or no network, draws uniformly
    from ``rng``; on a continuous task ε-greedy and Boltzmann have no Q-values to act on
    (:func:`hindsight_rl.core.training.continuous_behaviour` acts there)."""
    if isinstance(actions, EnvInfo) and actions.continuous:
        return _continuous_behaviour(config, actions, network, rng)
    n_actions = actions.n_actions if isinstance(actions, EnvInfo) else actions
    if n_actions is None:
        raise BehaviourPolicyError("behaviour_policy: got n_actions None (a continuous "
                                   "task); pass the env's EnvInfo, which has its bounds")
    if config.policy == "uniform" or network is None:
        return uniform_policy(n_actions, rng)
    return _q_behaviour(config, n_actions, q_function(network), rng)


def _q_behaviour(config: CollectConfig, n_actions: int, q_values: QFunction,
                 rng: np.random.Generator) -> Act:
    """ε-greedy or Boltzmann over a discrete task's Q-values."""
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


def _continuous_behaviour(config: CollectConfig, info: EnvInfo, network: QNetwork | None,
                          rng: np.random.Generator) -> Act:
    """Uniform within the bounds; a Q-network (one value per discrete action) cannot choose
    a vector."""
    if config.policy == "uniform" or network is None:
        return uniform_policy(info, rng)
    raise BehaviourPolicyError(
        f"collect.policy: {config.policy} needs Q-values over discrete actions, but the "
        f"task has continuous actions ({info.action_dim} entries in "
        f"[{info.action_low.tolist()}, {info.action_high.tolist()}]); use policy: uniform")


def uniform_policy(actions: int | EnvInfo, rng: np.random.Generator) -> Act:
    """Uniformly random actions drawn from ``rng``: an index among ``actions`` discrete ones,
    or a vector within a continuous task's bounds (its :class:`EnvInfo`)."""
    if isinstance(actions, EnvInfo) and actions.continuous:
        return uniform_box(actions.action_low, actions.action_high, rng)
    n_actions = actions.n_actions if isinstance(actions, EnvInfo) else actions
    return lambda obs: int(rng.integers(n_actions))


def uniform_box(low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> Act:
    """``obs -> action`` drawn uniformly in ``[low, high]`` from ``rng`` (so a collection
    is reproducible from its seed, unlike ``action_space.sample()``'s own generator)."""
    low, high = _bounds(low, high)

    def uniform(obs: np.ndarray) -> np.ndarray:
        return np.clip(rng.uniform(low, high), low, high).astype(np.float32)
    return uniform


def _bounds(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite 1-d bounds of equal shape, ``low <= high``, as float32 (the table's dtype,
    so that clipping to them keeps the stored action inside them)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    if low.ndim != 1 or low.shape != high.shape or not (np.isfinite(low).all()
                                                        and np.isfinite(high).all()
                                                        and (low <= high).all()):
        raise ValueError(f"action bounds must be finite 1-d arrays of one shape with low <= "
                         f"high, got {low.tolist()} and {high.tolist()}")
    return low, high


def collect_rollouts(env_config: EnvConfig, steps: int, act: Act, seed: int) -> Transitions:
    """Step one environment ``steps`` times with ``act``.

    The episode still running when the budget is spent is marked ``truncated``: it was
    cut, not ended, exactly like a time limit. On a continuous task each action is clipped
    to the bounds as float32 before the step, so the env and the table see the same action.
    """
    env = make_env(env_config)
    as_action = _action_converter(env.action_space)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    columns: dict[str, list] = {k: [] for k in ("episode_id", "t", "obs", "action", "reward",
                                                "next_obs", "terminated", "truncated")}
    episode, t, episode_return = 0, 0, 0.0
    with StepProgress(f"collect {env_config.id}", steps) as progress:
        for step in range(steps):
            action = as_action(act(obs))
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


def _action_converter(space: gym.Space) -> Callable[[int | np.ndarray], int | np.ndarray]:
    """Identity on a discrete task; on a continuous one, a float32 vector of the space's
    shape inside its bounds."""
    if not isinstance(space, gym.spaces.Box):
        return lambda action: action
    low, high = _bounds(space.low, space.high)

    def to_box(action: int | np.ndarray) -> np.ndarray:
        vector = np.asarray(action, np.float32).reshape(low.shape)
        return np.clip(vector, low, high)
    return to_box


def trajectory_attrs(env_config: EnvConfig, collect: CollectConfig,
                     behaviour_sha256: str | None) -> dict[str, object]:
    """Provenance stored in the Parquet file's key-value metadata (pandas ``attrs``)."""
    return {"env_id": env_config.id, "make_kwargs": dict(env_config.make_kwargs),
            "overrides": dict(env_config.overrides), "seed": collect.seed,
            "behaviour_policy": collect.policy, "behaviour_sha256": behaviour_sha256}
