"""Shared fixtures: a deterministic dummy environment, tiny configs, labelled tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces

from hindsight_rl.core.config import CollectConfig, DQNConfig, EnvConfig, NetworkConfig
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.rollouts import collect_rollouts, trajectory_attrs


class CorridorEnv(gym.Env):
    """Walk right along a 1-d corridor: action 1 moves +1, action 0 stays.

    ## Observation Space
    Box(1): the position, starting at 0.
    ## Rewards
    -1 per step, 0 on reaching ``length``.
    ## Episode End
    Terminates at position ``length``; the registered time limit truncates otherwise.
    """

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.observation_space = spaces.Box(-1.0, 10.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.position = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = 0
        return np.array([0.0], np.float32), {}

    def step(self, action: int):
        self.position += int(action)
        terminated = self.position >= self.length
        return (np.array([self.position], np.float32), 0.0 if terminated else -1.0,
                terminated, False, {})


gym.register("Corridor-v0", entry_point=CorridorEnv, max_episode_steps=5,
             reward_threshold=-2.0)


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def copy_project(root: Path) -> Path:
    """A copy of the project's config and metadata in ``root`` (data starts empty; the
    package itself is imported from its installation)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf",
                    ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()
    return root


def hindsight_table(env: EnvConfig, steps: int, her_k: int = 0, seed: int = 0
                    ) -> pd.DataFrame:
    """A labelled (hindsight) table of uniform-random steps on ``env``, with its provenance."""
    rng = np.random.default_rng(seed)
    n_actions = int(gym.make(env.id).action_space.n)
    transitions = collect_rollouts(env, steps, lambda obs: int(rng.integers(n_actions)), seed)
    table = label_hindsight(transitions, 0.99, env.success, gym.spec(env.id).max_episode_steps,
                            env.goal, her_k=her_k, seed=seed)
    table.attrs = trajectory_attrs(env, CollectConfig(seed=seed), behaviour_sha256=None)
    return table


@pytest.fixture
def corridor() -> EnvConfig:
    return EnvConfig(id="Corridor-v0", success="terminated")


@pytest.fixture
def tiny_network() -> NetworkConfig:
    return NetworkConfig(hidden_sizes=(16, 16))


@pytest.fixture
def tiny_dqn() -> DQNConfig:
    return DQNConfig(total_steps=300, batch_size=16, buffer_size=500, learning_starts=32,
                     train_freq=16, gradient_steps=2, eval_interval=100, eval_episodes=2)


@pytest.fixture
def box_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Continuous-action tasks (Pendulum-v1) through ``make_env`` and ``env_info``.

    The continuous-plumbing branch teaches envs.py Box actions (``EnvInfo.action_low`` and
    ``action_high``); until it is merged, this stands in for it, so the policy file's actor
    can be played end to end. Once ``EnvInfo`` has ``action_low`` it does nothing."""
    from types import SimpleNamespace

    from hindsight_rl import play
    from hindsight_rl.core import comparison, envs

    if "action_low" in envs.EnvInfo.__dataclass_fields__:
        return
    check_spaces, discrete_info = envs._check_spaces, envs.env_info

    def take_boxes(env: gym.Env, env_id: str) -> None:
        if not isinstance(env.action_space, spaces.Box):
            check_spaces(env, env_id)

    def env_info(config: EnvConfig):
        env = envs.make_env(config)
        space, spec = env.action_space, env.spec
        env.close()
        if not isinstance(space, spaces.Box):
            return discrete_info(config)
        return SimpleNamespace(
            obs_dim=int(env.observation_space.shape[0]), n_actions=None,
            obs_low=env.observation_space.low, obs_high=env.observation_space.high,
            reward_threshold=None if spec is None else spec.reward_threshold,
            max_episode_steps=None if spec is None else spec.max_episode_steps,
            action_low=np.asarray(space.low, np.float32),
            action_high=np.asarray(space.high, np.float32))

    monkeypatch.setattr(envs, "_check_spaces", take_boxes)
    for module in (envs, play, comparison):
        monkeypatch.setattr(module, "env_info", env_info)
