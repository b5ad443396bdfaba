"""Tasks whose action spaces the project does not take (a Dict, a 2-d Box, an unbounded
Box), to show each is refused with a clear error rather than failing inside training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class _OneStep(gym.Env):
    """One-step episodes on a 1-d observation; only the action space varies."""

    action_space: gym.Space

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, True, False, {}


class DictActions(_OneStep):
    action_space = spaces.Dict({"move": spaces.Discrete(2)})


class MatrixActions(_OneStep):
    action_space = spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32)


class UnboundedActions(_OneStep):
    action_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
