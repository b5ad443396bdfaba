"""Preallocated numpy ring buffer; batches are gathered straight into arrays torch shares."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from hindsight_rl.core.hindsight import Bootstrap
from hindsight_rl.core.trajectories import Transitions


class Batch(NamedTuple):
    """Sampled transitions with their TD targets' parts (:class:`Bootstrap`), ``B`` rows for
    each of ``K`` members of a stacked network."""

    obs: torch.Tensor  # (K, B, obs_dim) float32
    action: torch.Tensor  # (K, B, 1) int64, or (K, B, action_dim) float32 for a Box
    bootstrap_reward: torch.Tensor  # (K, B) float32: Σ γ^j r over the target's m steps
    bootstrap_obs: torch.Tensor  # (K, B, obs_dim) float32: the observation m steps ahead
    discount: torch.Tensor  # (K, B) float32: γ^m, 0 after a termination (truncation bootstraps)
    return_to_go: torch.Tensor  # (K, B) float32
    rtg_valid: torch.Tensor  # (K, B) float32: 1 where return_to_go is an exact return


_COLUMNS = ("obs", "next_obs", "action", "reward", "terminated", "return_to_go", "rtg_valid",
            "bootstrap_reward", "bootstrap_obs", "discount")


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions with hindsight labels written once episodes end.

    Each row keeps its one-step transition (what relabelling reads) and the TD target's parts,
    one-step until :meth:`label` writes the n-step ones its finished episode allows.
    """

    def __init__(self, capacity: int, obs_dim: int, rng: np.random.Generator,
                 gamma: float, action_dim: int | None = None) -> None:
        self.capacity = capacity
        self.rng = rng
        self.gamma = gamma
        # What a batch reads lies side by side in one table: one gather samples it all.
        self._sampled = np.zeros((capacity, _table_width(obs_dim)), np.float32)
        (self.obs, self.bootstrap_reward, self.bootstrap_obs, self.discount,
         self.return_to_go, self.rtg_valid) = _table_columns(self._sampled, obs_dim)
        self.action = _action_array(capacity, action_dim)
        self.continuous = action_dim is not None
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self._uniform = np.zeros(0)
        self.position = 0
        self.size = 0

    def add(self, obs: np.ndarray, action: int | np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool) -> int:
        """Store one transition; return its slot so the episode can be labelled later."""
        i = self.position
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.action[i] = action
        self.reward[i] = reward
        self.terminated[i] = terminated
        self.rtg_valid[i] = 0.0
        self.bootstrap_reward[i] = reward
        self.bootstrap_obs[i] = next_obs
        self.discount[i] = 0.0 if terminated else self.gamma
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def extend(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
               next_obs: np.ndarray, terminated: np.ndarray,
               return_to_go: np.ndarray | None = None,
               rtg_valid: np.ndarray | None = None,
               bootstrap: Bootstrap | None = None) -> None:
        """Store many transitions at once (warm start from a rollout dataset, relabelled
        copies); one-step targets unless ``bootstrap`` gives others."""
        keep = slice(max(0, len(action) - self.capacity), None)  # only the newest fit
        slots = (self.position + np.arange(len(action[keep]))) % self.capacity
        self.obs[slots] = obs[keep]
        self.next_obs[slots] = next_obs[keep]
        self.action[slots] = action[keep].reshape(len(slots), -1)
        self.reward[slots] = reward[keep]
        self.terminated[slots] = terminated[keep]
        self.return_to_go[slots] = 0.0 if return_to_go is None else return_to_go[keep]
        self.rtg_valid[slots] = 0.0 if rtg_valid is None else rtg_valid[keep]
        if bootstrap is None:
            bootstrap = Bootstrap(reward, next_obs, self.gamma * (1.0 - terminated))
        self._write_bootstrap(slots, bootstrap, keep)
        self.position = int((self.position + len(slots)) % self.capacity)
        self.size = min(self.size + len(slots), self.capacity)

    def label(self, slots: list[int], return_to_go: np.ndarray, valid: bool,
              bootstrap: Bootstrap) -> None:
        """Write an ended episode's hindsight labels into its slots: returns-to-go and
        n-step TD targets."""
        self.return_to_go[slots] = return_to_go
        self.rtg_valid[slots] = float(valid)
        self._write_bootstrap(slots, bootstrap, slice(None))

    def _write_bootstrap(self, slots: np.ndarray | list[int], bootstrap: Bootstrap,
                         rows: slice) -> None:
        self.bootstrap_reward[slots] = bootstrap.reward[rows]
        self.bootstrap_obs[slots] = bootstrap.next_obs[rows]
        self.discount[slots] = bootstrap.discount[rows]

    def episode(self, slots: list[int], truncated: bool) -> Transitions:
        """The transitions stored at ``slots``, as one episode (for relabelling)."""
        n = len(slots)
        last = np.zeros(n, bool)
        last[-1] = truncated
        return Transitions(episode_id=np.zeros(n, np.int64), t=np.arange(n, dtype=np.int32),
                           obs=self.obs[slots],
                           action=self.action[slots] if self.continuous else self.action[slots, 0],
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

    def sample_into(self, table: np.ndarray, action: np.ndarray) -> None:
        """Fill one member's block of :func:`batch_arrays` (``table``, ``action``) with
        transitions drawn uniformly with replacement: written in place, so a training run
        reuses one set of arrays, shared with torch, for every batch. Indices are
        ``floor(u · size)``: ``Generator.integers`` costs more than the two gathers."""
        if len(self._uniform) != len(action):
            self._uniform = np.zeros(len(action))
        uniform = self.rng.random(out=self._uniform)
        index = np.multiply(uniform, self.size, out=uniform).astype(np.intp)
        np.minimum(index, self.size - 1, out=index)  # u·size can round up to size
        np.take(self._sampled, index, axis=0, out=table)
        np.take(self.action, index, axis=0, out=action)


def _action_array(rows: int, action_dim: int | None) -> np.ndarray:
    """Action rows: one int64 index for a Discrete space (``None``), ``action_dim`` float32
    entries for a Box."""
    if action_dim is None:
        return np.zeros((rows, 1), np.int64)
    return np.zeros((rows, action_dim), np.float32)


def _table_width(obs_dim: int) -> int:
    return 2 * obs_dim + 4


def _table_columns(table: np.ndarray, obs_dim: int) -> tuple[np.ndarray, ...]:
    """Views of a sampled-columns table (rows last-but-one axis): obs, the bootstrap's reward
    and observation, discount, return-to-go and its validity."""
    d = obs_dim
    return (table[..., :d], table[..., d], table[..., d + 1:2 * d + 1], table[..., 2 * d + 1],
            table[..., 2 * d + 2], table[..., 2 * d + 3])


def batch_arrays(members: int, batch_size: int, obs_dim: int, action_dim: int | None = None
                 ) -> tuple[tuple[np.ndarray, np.ndarray], Batch]:
    """Arrays for :meth:`ReplayBuffer.sample_into` (member ``k``'s block is
    ``(table[k], action[k])``) and the :class:`Batch` of tensors viewing them; actions as
    :class:`ReplayBuffer` stores them for ``action_dim``."""
    table = torch.zeros(members, batch_size, _table_width(obs_dim))
    action = torch.from_numpy(_action_array(members * batch_size, action_dim)).view(
        members, batch_size, -1)
    columns = _table_columns(table, obs_dim)
    return (table.numpy(), action.numpy()), Batch(obs=columns[0], action=action,
                                                  bootstrap_reward=columns[1],
                                                  bootstrap_obs=columns[2], discount=columns[3],
                                                  return_to_go=columns[4], rtg_valid=columns[5])
