"""Shared fixtures: a deterministic dummy environment, tiny configs, labelled tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium import spaces

from hindsight_rl.core.config import (
    CollectConfig,
    ConvConfig,
    DQNConfig,
    EnvConfig,
    GoalConfig,
    NetworkConfig,
    ObservationConfig,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import Policy
from hindsight_rl.core.replay import ReplayBuffer
from hindsight_rl.core.rollouts import collect_rollouts, trajectory_attrs, uniform_policy


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
    act = uniform_policy(env_info(env), np.random.default_rng(seed))
    transitions = collect_rollouts(env, steps, act, seed)
    table = label_hindsight(transitions, 0.99, env.success, gym.spec(env.id).max_episode_steps,
                            env.goal, her_k=her_k, seed=seed)
    table.attrs = trajectory_attrs(env, CollectConfig(seed=seed), behaviour_sha256=None)
    return table


@pytest.fixture
def corridor() -> EnvConfig:
    return EnvConfig(id="Corridor-v0", success="terminated")


MINIGRID_VIEW = ObservationConfig(key="image", high=10.0)
"""What a network sees of a MiniGrid room: its 7×7×3 view, entries up to 10."""


def always_forward(env: EnvConfig) -> Policy:
    """A policy for ``env`` (a MiniGrid task seen through :data:`MINIGRID_VIEW`) whose
    network always goes forward (action 2): it walks into the first wall and stays there."""
    network = QNetwork(147, 7, NetworkConfig(hidden_sizes=(4, 4)))
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        network.head.bias[..., 2] = 1.0
    return Policy(network=network, env=env, gamma=0.99)


def conv_policy_with_position_and_goal() -> Policy:
    """A cnn network whose view is followed by the agent's cell and a desired cell: what
    MiniGrid with ``observation.position`` and a goal gives it."""
    torch.manual_seed(4)
    config = NetworkConfig(hidden_sizes=(16, 16), encoder="cnn",
                           conv=ConvConfig(channels=(4, 8), kernels=(3, 2), strides=(2, 1)))
    shift = np.concatenate([np.full(147, 5.0), [3.5, 3.5, 3.5, 3.5]]).astype(np.float32)
    scale = np.concatenate([np.full(147, 0.2), [0.3, 0.3, 0.3, 0.3]]).astype(np.float32)
    network = QNetwork(151, 7, config, shift, scale, image_shape=(7, 7, 3))
    env = EnvConfig(id="MiniGrid-DoorKey-8x8-v0", success="terminated",
                    observation=ObservationConfig(key="image", high=10.0, position=True),
                    goal=GoalConfig(achieved=(147, 148), desired=(6.0, 6.0), reached="within"))
    return Policy(network=network, env=env, gamma=0.99)


@pytest.fixture
def stored_rewards(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every reward handed to a replay buffer from now on, in order, as it was handed over
    (before the buffer's float32 storage)."""
    rewards: list[float] = []
    real_add = ReplayBuffer.add

    def spy(self, obs, action, reward, *args, **kwargs):
        rewards.append(float(reward))
        return real_add(self, obs, action, reward, *args, **kwargs)

    monkeypatch.setattr(ReplayBuffer, "add", spy)
    return rewards


@pytest.fixture
def tiny_network() -> NetworkConfig:
    return NetworkConfig(hidden_sizes=(16, 16))


@pytest.fixture
def tiny_dqn() -> DQNConfig:
    return DQNConfig(total_steps=300, batch_size=16, buffer_size=500, learning_starts=32,
                     train_freq=16, gradient_steps=2, eval_interval=100, eval_episodes=2)
