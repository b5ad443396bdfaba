"""Preallocated numpy ring buffer; batches reach torch without copies beyond the gather."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from hindsight_rl.core.trajectories import Transitions


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, obs_dim) float32
    action: torch.Tensor  # (B, 1) int64
    reward: torch.Tensor  # (B,) float32
    next_obs: torch.Tensor  # (B, obs_dim) float32
    terminated: torch.Tensor  # (B,) float32: 1 cuts the bootstrap, truncation does not
    return_to_go: torch.Tensor  # (B,) float32
    rtg_valid: torch.Tensor  # (B,) float32: 1 where return_to_go is an exact return


_COLUMNS = ("obs", "next_obs", "action", "reward", "terminated", "return_to_go", "rtg_valid")


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions with hindsight labels written once episodes end."""

    def __init__(self, capacity: int, obs_dim: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, 1), np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.return_to_go = np.zeros(capacity, np.float32)
        self.rtg_valid = np.zeros(capacity, np.float32)
        self.position = 0
        self.size = 0

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            terminated: bool) -> int:
        """Store one transition; return its slot so the episode can be labelled later."""
        i = self.position
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.action[i, 0] = action
        self.reward[i] = reward
        self.terminated[i] = terminated
        self.rtg_valid[i] = 0.0
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def extend(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
               next_obs: np.ndarray, terminated: np.ndarray,
               return_to_go: np.ndarray | None = None,
               rtg_valid: np.ndarray | None = None) -> None:
        """Store many transitions at once (warm start from a rollout dataset)."""
        keep = slice(max(0, len(action) - self.capacity), None)  # only the newest fit
        slots = (self.position + np.arange(len(action[keep]))) % self.capacity
        self.obs[slots] = obs[keep]
        self.next_obs[slots] = next_obs[keep]
        self.action[slots, 0] = action[keep]
        self.reward[slots] = reward[keep]
        self.terminated[slots] = terminated[keep]
        self.return_to_go[slots] = 0.0 if return_to_go is None else return_to_go[keep]
        self.rtg_valid[slots] = 0.0 if rtg_valid is None else rtg_valid[keep]
        self.position = int((self.position + len(slots)) % self.capacity)
        self.size = min(self.size + len(slots), self.capacity)

    def label(self, slots: list[int], return_to_go: np.ndarray, valid: bool) -> None:
        """Write an ended episode's returns-to-go into its slots (hindsight labelling)."""
        self.return_to_go[slots] = return_to_go
        self.rtg_valid[slots] = float(valid)

    def episode(self, slots: list[int], truncated: bool) -> Transitions:
        """The transitions stored at ``slots``, as one episode (for relabelling)."""
        n = len(slots)
        last = np.zeros(n, bool)
        last[-1] = truncated
        return Transitions(episode_id=np.zeros(n, np.int64), t=np.arange(n, dtype=np.int32),
                           obs=self.obs[slots], action=self.action[slots, 0],
                           reward=self.reward[slots], next_obs=self.next_obs[slots],
                           terminated=self.terminated[slots].astype(bool), truncated=last)

    def arrays(self) -> dict[str, np.ndarray]:
        """The filled part of every column, for a training checkpoint."""
        return {name: getattr(self, name)[:self.size] for name in _COLUMNS}

    def restore(self, arrays: dict[str, np.ndarray], position: int) -> None:
        """Inverse of :meth:`arrays` (with the write position saved beside them)."""
        self.size = len(arrays["reward"])
        for name in _COLUMNS:
            getattr(self, name)[:self.size] = arrays[name]
        self.position = position

    def sample(self, batch_size: int) -> Batch:
        idx = self.rng.integers(0, self.size, size=batch_size)
        return Batch(*(torch.from_numpy(array[idx]) for array in (
            self.obs, self.action, self.reward, self.next_obs, self.terminated,
            self.return_to_go, self.rtg_valid)))
