"""Shared fixtures: a deterministic dummy environment and tiny configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from hindsight_rl.core.config import DQNConfig, EnvConfig, NetworkConfig


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
