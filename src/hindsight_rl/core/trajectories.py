"""Transitions in memory and as the trajectory table of DESIGN.md (one row per transition)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Transitions:
    """Column arrays of consecutive transitions, episode after episode.

    ``truncated`` marks an episode that was cut (time limit or end of collection) rather
    than ended: its last ``next_obs`` still has a value worth bootstrapping from.
    """

    episode_id: np.ndarray  # int64
    t: np.ndarray  # int32, step within the episode
    obs: np.ndarray  # float32 (n, obs_dim)
    action: np.ndarray  # int64
    reward: np.ndarray  # float32
    next_obs: np.ndarray  # float32 (n, obs_dim)
    terminated: np.ndarray  # bool
    truncated: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.action)

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])


_DTYPES = {"episode_id": np.int64, "t": np.int32, "obs": np.float32, "action": np.int64,
           "reward": np.float32, "next_obs": np.float32, "terminated": np.bool_,
           "truncated": np.bool_}


def transitions_from_lists(**columns: list) -> Transitions:
    """Build :class:`Transitions` from per-step lists with the contract's dtypes."""
    return Transitions(**{name: np.asarray(columns[name], dtype=dtype)
                          for name, dtype in _DTYPES.items()})


def to_table(transitions: Transitions) -> pd.DataFrame:
    """The trajectory table: ``obs_i`` and ``next_obs_i`` spread into float32 columns."""
    columns: dict[str, np.ndarray] = {
        "episode_id": transitions.episode_id, "t": transitions.t}
    columns.update(_spread("obs", transitions.obs))
    columns["action"] = transitions.action
    columns["reward"] = transitions.reward
    columns.update(_spread("next_obs", transitions.next_obs))
    columns["terminated"] = transitions.terminated
    columns["truncated"] = transitions.truncated
    return pd.DataFrame(columns)


def from_table(table: pd.DataFrame) -> Transitions:
    """Inverse of :func:`to_table`; extra columns (hindsight labels) are ignored."""
    missing = [c for c in ("episode_id", "t", "action", "reward", "terminated", "truncated",
                           "obs_0", "next_obs_0") if c not in table.columns]
    if missing:
        raise ValueError(f"trajectory table lacks columns {missing}")
    values = {f.name: None for f in fields(Transitions)}
    for name in values:
        if name in ("obs", "next_obs"):
            values[name] = _gather(table, name)
        else:
            values[name] = table[name].to_numpy(dtype=_DTYPES[name])
    return Transitions(**values)


def _spread(prefix: str, array: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{prefix}_{i}": np.ascontiguousarray(array[:, i]) for i in range(array.shape[1])}


def _gather(table: pd.DataFrame, prefix: str) -> np.ndarray:
    dim = sum(1 for c in table.columns
              if c.startswith(f"{prefix}_") and c[len(prefix) + 1:].isdigit())
    return table[[f"{prefix}_{i}" for i in range(dim)]].to_numpy(dtype=np.float32)
