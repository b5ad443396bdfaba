"""An image task with a chosen shape, to show which axis the network reads as channels."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class PixelImage(gym.Env):
    """A still image of ``shape`` whose pixels are 0, 1, 2, … in memory order (uint8), so
    the position of each pixel in the network's row shows the layout it was read in.
    One-step episodes, reward 0."""

    def __init__(self, shape: tuple[int, int, int] = (3, 4, 5)) -> None:
        self.shape = tuple(shape)
        self.observation_space = spaces.Box(0, 255, shape=self.shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(2)

    def image(self) -> np.ndarray:
        return (np.arange(math.prod(self.shape)) % 256).astype(np.uint8).reshape(self.shape)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.image(), {}

    def step(self, action: int):
        return self.image(), 0.0, True, False, {}
