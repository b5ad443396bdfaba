"""Count-based novelty: a reward bonus for observations a member has rarely reached.

On a sparse-reward task (MiniGrid's DoorKey pays nothing until the key is carried, the door
opened and the goal reached) ε-greedy has no reward to follow, and on a larger room a
transferred network's greedy behaviour loops. #Exploration (Tang et al. 2017) counts visits
in a hash of the observation and adds ``coef / sqrt(n)`` to the env's reward, ``n`` counting
this visit: value flows towards what is still new, and the bonus fades as it is learned.
The hash is SimHash, the signs of a fixed Gaussian projection of the observation as the
network normalises it, so nearby observations share a count and the table stays small.
The bonus only shapes the replay's rewards: learning curves, the final judgement and the
training episodes' recorded returns are the env's own.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MAX_BITS = 62
"""The hash must fit a signed 64-bit integer to be checkpointed as a tensor."""


class NoveltyBonus:
    """One member's visit counts and bonus (see the module docstring)."""

    def __init__(self, coef: float, bits: int, shift: np.ndarray, scale: np.ndarray,
                 seed: int) -> None:
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be in [1, {MAX_BITS}], got {bits}")
        self.coef = coef
        self.shift = np.asarray(shift, np.float32).reshape(-1)
        self.scale = np.asarray(scale, np.float32).reshape(-1)
        rng = np.random.default_rng([seed, 0x6E6F76])  # its own stream: acting is unchanged
        self.projection = rng.standard_normal((self.shift.size, bits)).astype(np.float32)
        self.powers = np.left_shift(np.int64(1), np.arange(bits, dtype=np.int64))
        self.counts: dict[int, int] = {}

    def code(self, obs: np.ndarray) -> int:
        """The observation's SimHash: bit i is the sign of its normalised form along row i."""
        x = (np.asarray(obs, np.float32).reshape(-1) - self.shift) * self.scale
        return int(self.powers[(x @ self.projection) > 0].sum())

    def __call__(self, obs: np.ndarray) -> float:
        """Count a visit to ``obs`` and return its bonus."""
        key = self.code(obs)
        visits = self.counts.get(key, 0) + 1
        self.counts[key] = visits
        return self.coef / math.sqrt(visits)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The counts, for a checkpoint."""
        return {"codes": torch.tensor(list(self.counts), dtype=torch.int64),
                "visits": torch.tensor(list(self.counts.values()), dtype=torch.int64)}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """The counts of :meth:`tensors`, in their order."""
        self.counts = dict(zip(tensors["codes"].tolist(), tensors["visits"].tolist(),
                               strict=True))
