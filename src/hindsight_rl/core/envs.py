"""Building Gymnasium environments from config, with attribute overrides that take effect."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from hindsight_rl.core.config import ConfigError, EnvConfig, GoalConfig, ProjectConfig


def _recompute_cartpole(env: CartPoleEnv) -> None:
    """CartPole caches these in ``__init__``; without this a ``length`` override does nothing."""
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


# Attributes some environments derive once in ``__init__`` from the ones users override.
_DERIVED_ATTRIBUTES: dict[type, Callable[[gym.Env], None]] = {CartPoleEnv: _recompute_cartpole}


@dataclass(frozen=True)
class EnvInfo:
    """What the network and the evaluation need to know about an environment."""

    obs_dim: int
    n_actions: int
    obs_low: np.ndarray
    obs_high: np.ndarray
    reward_threshold: float | None
    max_episode_steps: int | None


class GoalObservation(gym.ObservationWrapper):
    """Appends the desired goal to every observation: what a goal-conditioned network sees.

    The goal entries get the bounds of the observation entries they are compared with, so
    the network normalises both the same way.
    """

    def __init__(self, env: gym.Env, goal: GoalConfig) -> None:
        super().__init__(env)
        space = env.observation_space
        if max(goal.achieved) >= space.shape[0]:
            raise ConfigError(f"env.goal.achieved: index {max(goal.achieved)} is outside the "
                              f"{space.shape[0]}-entry observation")
        self.desired = np.asarray(goal.desired, np.float32)
        index = list(goal.achieved)
        self.observation_space = gym.spaces.Box(
            np.concatenate([space.low, space.low[index]]).astype(np.float32),
            np.concatenate([space.high, space.high[index]]).astype(np.float32),
            dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, self.desired]).astype(np.float32)


def without_goal(config: EnvConfig) -> EnvConfig:
    """The plain environment: observations as the task gives them (how a policy file is
    played: it appends its own normalised goal)."""
    return config.model_copy(update={"goal": None})


def make_env(config: EnvConfig) -> gym.Env:
    """``gymnasium.make`` plus the configured overrides, with clear errors for bad ids; the
    desired goal appended to observations when the task declares one.

    Only ``config.entry_point`` (the project's configuration, or a flag the user typed)
    registers code (``EnvConfig`` refuses ids with a ``module:`` prefix, which
    ``gymnasium.make`` would import)."""
    if config.entry_point and config.id not in gym.registry:
        _register(config)
    if config.id not in gym.registry:
        close = difflib.get_close_matches(config.id, list(gym.registry), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"env.id: unknown Gymnasium environment {config.id!r}.{hint}")
    env = gym.make(config.id, **config.make_kwargs)
    _check_spaces(env, config.id)
    apply_overrides(env, config.overrides)
    return env if config.goal is None else GoalObservation(env, config.goal)


def _register(config: EnvConfig) -> None:
    """Register a custom environment from its ``module:Class`` entry point, checking first
    that it imports (Gymnasium would only fail later, inside ``make``)."""
    module, _, name = (config.entry_point or "").partition(":")
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"env.entry_point: cannot import {config.entry_point!r} ({error}); "
                          "expected 'package.module:EnvClass'") from None
    gym.register(config.id, entry_point=config.entry_point,
                 max_episode_steps=config.max_episode_steps,
                 reward_threshold=config.reward_threshold)


def apply_overrides(env: gym.Env, overrides: dict[str, float]) -> None:
    """Set attributes on ``env.unwrapped`` and refresh the values derived from them."""
    base = env.unwrapped
    for name, value in overrides.items():
        if not hasattr(base, name):
            raise ConfigError(
                f"env.overrides.{name}: {type(base).__name__} has no attribute {name!r}")
        setattr(base, name, value)
    for cls, recompute in _DERIVED_ATTRIBUTES.items():
        if isinstance(base, cls):
            recompute(base)


def _check_spaces(env: gym.Env, env_id: str) -> None:
    obs_space, act_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise ConfigError(f"env.id: {env_id} has observation space {obs_space}; "
                          "supported: a flat Box (1-d)")
    if not isinstance(act_space, gym.spaces.Discrete):
        raise ConfigError(f"env.id: {env_id} has action space {act_space}; supported: Discrete")


def env_info(config: EnvConfig) -> EnvInfo:
    """Spaces, reward threshold and time limit of the configured environment."""
    env = make_env(config)
    try:
        spec = env.spec
        return EnvInfo(
            obs_dim=int(env.observation_space.shape[0]),
            n_actions=int(env.action_space.n),
            obs_low=np.asarray(env.observation_space.low, dtype=np.float32),
            obs_high=np.asarray(env.observation_space.high, dtype=np.float32),
            reward_threshold=None if spec is None else spec.reward_threshold,
            max_episode_steps=None if spec is None else spec.max_episode_steps,
        )
    finally:
        env.close()


def registered_time_limit(config: EnvConfig) -> int | None:
    """The time limit the environment is registered with, whatever ``make_kwargs`` say."""
    make_env(config).close()  # registers a custom environment first
    return gym.spec(config.id).max_episode_steps


def check_environments(project: ProjectConfig) -> None:
    """Build every configured environment once, so a bad id, space or override fails
    before any training starts; errors carry the full key path."""
    for path, run in project.all_runs().items():
        try:
            info = env_info(run.env)
        except ConfigError as error:
            raise ConfigError(f"{path}.{error}") from None
        if run.dqn.stop_on_threshold and info.reward_threshold is None:
            raise ConfigError(f"{path}.dqn.stop_on_threshold: {run.env.id} has no reward "
                              "threshold; set env.reward_threshold or turn it off")
