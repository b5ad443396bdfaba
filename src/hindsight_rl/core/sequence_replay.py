"""Replay of stretches of episodes for a recurrent Q-network: R2D2's sequence replay
(Kapturowski et al. 2019) for one member, in preallocated numpy ring arrays.

A sample is a batch of windows of ``burn_in + length`` consecutive steps of one episode. A
window never crosses an episode boundary: the hidden state carries from step to step, so a
window running into the next episode would give that episode the end of another as its
past. Where the episode ends first, the rest of the window is zero padding (``valid``
false). The hidden state starts at zero at a window's first step (R2D2's "zero start
state"), which is wrong mid-episode until the network has seen a few observations: the
first ``burn_in`` steps only warm it and carry no loss (``learn`` false).

Every row records its episode and its step in that episode, and a window reads a slot only
if it holds the next step of the same episode. So when the ring has overwritten the
beginning of an old episode, a window can start at any of its surviving steps (they are
newer than the overwritten ones) and never reads a row written since.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SequenceBatch(NamedTuple):
    """``B`` windows of ``T = burn_in + length`` steps. ``obs`` has ``T + 1`` positions: the
    window's observations, then the one after its last step, so that a recurrent network
    run once over ``obs`` gives both the online Q-values (positions ``< T``) and the
    bootstrap ones. Padded entries are zero."""

    obs: np.ndarray  # (B, T + 1, obs_dim) float32: obs[:, i + 1] is step i's next observation
    action: np.ndarray  # (B, T) int64
    reward: np.ndarray  # (B, T) float32, one step
    valid: np.ndarray  # (B, T) bool: a stored step, not padding (a prefix of each window)
    learn: np.ndarray  # (B, T) bool: valid and past the burn-in, the steps that carry a loss
    reset_hidden: np.ndarray  # (B, T + 1) bool: zero the hidden state before this position
    bootstrap_reward: np.ndarray  # (B, T) float32: Σ_{j<m} γ^j r_{i+j}
    bootstrap_step: np.ndarray  # (B, T) int64: i + m, the position in obs to bootstrap from
    discount: np.ndarray  # (B, T) float32: γ^m, 0 after a termination (truncation bootstraps)
    start: np.ndarray  # (B,) int64: the slot of each window's first step


_COLUMNS = ("obs", "next_obs", "action", "reward", "terminated", "truncated", "episode",
            "step")


class SequenceReplay:
    """Fixed-capacity FIFO of one member's transitions, sampled as windows of
    ``burn_in + length`` steps that start at a uniformly drawn stored step.

    TD targets look ``n_step`` steps ahead, but never past the episode's end or the window's
    last step: ``m = min(n_step, steps left in the window's valid part)``. The window's end
    bootstraps from the observation after it, which ``obs`` always holds.

    ``learn_from_episode_start``: a window starting at its episode's first step starts from
    exactly the hidden state the actor had (zero), so it needs no burn-in; with this set such
    a window learns from its first step. Without it, as in the paper, an episode's first
    ``burn_in`` steps are never in any loss.
    """

    def __init__(self, capacity: int, obs_dim: int, rng: np.random.Generator, gamma: float,
                 burn_in: int, length: int, n_step: int = 1,
                 learn_from_episode_start: bool = False) -> None:
        if capacity < 1 or length < 1 or burn_in < 0 or n_step < 1:
            raise ValueError(f"need capacity, length, n_step ≥ 1 and burn_in ≥ 0; got "
                             f"{capacity}, {length}, {n_step} and {burn_in}")
        self.capacity, self.rng, self.gamma = capacity, rng, gamma
        self.burn_in, self.length, self.n_step = burn_in, length, n_step
        self.learn_from_episode_start = learn_from_episode_start
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, bool)
        self.truncated = np.zeros(capacity, bool)
        self.episode = np.full(capacity, -1, np.int64)
        """Episode number of each row (counting from 0); -1 for a slot never written."""
        self.step = np.zeros(capacity, np.int64)
        """Step of each row within its episode."""
        self.position = 0
        self.size = 0
        self._episode = 0
        self._step = 0

    @property
    def window(self) -> int:
        """Steps in a window: ``burn_in + length``."""
        return self.burn_in + self.length

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            terminated: bool, truncated: bool) -> int:
        """Store one transition; the next one starts a new episode if this one ended it
        (``truncated`` also for an episode cut for any other reason). Returns its slot."""
        i = self.position
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.action[i] = action
        self.reward[i] = reward
        self.terminated[i] = terminated
        self.truncated[i] = truncated
        self.episode[i] = self._episode
        self.step[i] = self._step
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._continue_after(i)
        return i

    def _continue_after(self, i: int) -> None:
        """Set the episode and step of the next row to follow row ``i``."""
        if self.terminated[i] or self.truncated[i]:
            self._episode, self._step = int(self.episode[i]) + 1, 0
        else:
            self._episode, self._step = int(self.episode[i]), int(self.step[i]) + 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The filled part of every column, for a training checkpoint."""
        return {name: getattr(self, name)[:self.size] for name in _COLUMNS}

    def restore(self, arrays: dict[str, np.ndarray], position: int) -> None:
        """Inverse of :meth:`arrays` (with the write position saved beside them); the episode
        in progress continues from the newest row."""
        self.size = len(arrays["reward"])
        for name in _COLUMNS:
            getattr(self, name)[:self.size] = arrays[name]
        self.position = position
        if self.size:
            self._continue_after((position - 1) % self.capacity)

    def sample(self, batch_size: int) -> SequenceBatch:
        """``batch_size`` windows, each starting at a stored step drawn uniformly (with
        replacement) by the buffer's generator."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        start = self.rng.integers(self.size, size=batch_size)
        offsets = np.arange(self.window)
        slots = (start[:, None] + offsets) % self.capacity
        valid = _same_episode(self.episode, self.step, start, slots, offsets)
        batch_obs = np.zeros((batch_size, self.window + 1, self.obs.shape[1]), np.float32)
        batch_obs[:, 0] = self.obs[start]
        batch_obs[:, 1:] = np.where(valid[..., None], self.next_obs[slots], 0.0)
        reward = np.where(valid, self.reward[slots], np.float32(0.0))
        terminated = valid & self.terminated[slots]
        bootstrap_reward, bootstrap_step, discount = _n_step(
            reward, terminated, valid, self.gamma, self.n_step)
        learn = valid & (offsets >= self.burn_in)
        if self.learn_from_episode_start:
            learn |= valid & (self.step[start] == 0)[:, None]
        reset = np.zeros((batch_size, self.window + 1), bool)
        reset[:, 0] = True  # episodes start only at a window's first step, if at all
        return SequenceBatch(obs=batch_obs, action=np.where(valid, self.action[slots], 0),
                             reward=reward, valid=valid, learn=learn, reset_hidden=reset,
                             bootstrap_reward=bootstrap_reward, bootstrap_step=bootstrap_step,
                             discount=discount, start=start.astype(np.int64))


def _same_episode(episode: np.ndarray, step: np.ndarray, start: np.ndarray, slots: np.ndarray,
                  offsets: np.ndarray) -> np.ndarray:
    """Which slots of each window hold the steps that follow its start in the same episode:
    a prefix of every row (after the episode's end, or the newest row, the next slot holds
    another episode, or an older row of this one, or nothing)."""
    follows = ((episode[slots] == episode[start][:, None])
               & (step[slots] == step[start][:, None] + offsets))
    return np.logical_and.accumulate(follows, axis=1)


def _n_step(reward: np.ndarray, terminated: np.ndarray, valid: np.ndarray, gamma: float,
            n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n-step targets' parts within windows ``(B, T)``: from step ``i``, ``m = min(n, valid
    steps from i)`` rewards, the position ``i + m`` of the observation to bootstrap from and
    ``γ^m`` (0 if step ``i + m - 1`` terminated). Padded steps get ``m = 1`` and nothing."""
    batch, steps = reward.shape
    offsets = np.arange(steps)
    m = np.clip(np.minimum(n, valid.sum(axis=1, keepdims=True) - offsets), 1, None)
    padded = np.concatenate([reward, np.zeros((batch, n), np.float32)], axis=1)
    total = np.zeros((batch, steps), np.float64)
    for j in range(n):
        total += np.where(j < m, gamma ** j * padded[:, offsets + j], 0.0)
    ended = np.take_along_axis(terminated, offsets + m - 1, axis=1)
    discount = np.where(valid & ~ended, gamma ** m, 0.0)
    return (np.where(valid, total, 0.0).astype(np.float32), (offsets + m).astype(np.int64),
            discount.astype(np.float32))
