"""Transitions in memory and as the trajectory table of DESIGN.md (one row per transition).

An action is an index (discrete tasks: one int64 ``action`` column) or a float vector
(continuous tasks: float32 columns ``action_0..action_{d-1}``); a table holds one kind."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from hindsight_rl.core.errors import HindsightRLError


@dataclass(frozen=True)
class Transitions:
    """Column arrays of consecutive transitions, episode after episode.

    ``truncated`` marks an episode that was cut (time limit or end of collection) rather
    than ended: its last ``next_obs`` still has a value worth bootstrapping from.
    ``action`` is ``(n,)`` int64 on a discrete task, ``(n, action_dim)`` float32 on a
    continuous one.
    """

    episode_id: np.ndarray  # int64
    t: np.ndarray  # int32, step within the episode
    obs: np.ndarray  # float32 (n, obs_dim)
    action: np.ndarray  # int64 (n,), or float32 (n, action_dim)
    reward: np.ndarray  # float32
    next_obs: np.ndarray  # float32 (n, obs_dim)
    terminated: np.ndarray  # bool
    truncated: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.action)

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def continuous(self) -> bool:
        """Whether actions are vectors (a Box action space) rather than indices."""
        return self.action.ndim == 2


_DTYPES = {"episode_id": np.int64, "t": np.int32, "obs": np.float32, "action": np.int64,
           "reward": np.float32, "next_obs": np.float32, "terminated": np.bool_,
           "truncated": np.bool_}
CONTINUOUS_ACTION_DTYPE = np.float32


def transitions_from_lists(**columns: list) -> Transitions:
    """Build :class:`Transitions` from per-step lists with the contract's dtypes; actions
    that are vectors (2-d once stacked) are continuous and kept as float32, never
    truncated to integers."""
    values = {name: np.asarray(columns[name], dtype=dtype) for name, dtype in _DTYPES.items()
              if name != "action"}
    action = np.asarray(columns["action"])
    if action.ndim not in (1, 2):
        raise ValueError(f"actions of shape {action.shape}: expected (n,) indices or "
                         "(n, action_dim) vectors")
    dtype = CONTINUOUS_ACTION_DTYPE if action.ndim == 2 else _DTYPES["action"]
    return Transitions(action=action.astype(dtype, copy=False), **values)


def to_table(transitions: Transitions, goal_dim: int = 0) -> pd.DataFrame:
    """The trajectory table: ``obs_i`` and ``next_obs_i`` spread into float32 columns.

    For a goal-conditioned task the last ``goal_dim`` entries of each observation are the
    desired goal (the same in ``obs`` and ``next_obs``): they become ``goal_i`` columns.
    """
    width = transitions.obs_dim - goal_dim
    columns: dict[str, np.ndarray] = {
        "episode_id": transitions.episode_id, "t": transitions.t}
    columns.update(_spread("obs", transitions.obs[:, :width]))
    if transitions.continuous:
        columns.update(_spread("action", transitions.action.astype(CONTINUOUS_ACTION_DTYPE)))
    else:
        columns["action"] = transitions.action
    columns["reward"] = transitions.reward
    columns.update(_spread("next_obs", transitions.next_obs[:, :width]))
    columns["terminated"] = transitions.terminated
    columns["truncated"] = transitions.truncated
    columns.update(_spread("goal", transitions.obs[:, width:]))
    return pd.DataFrame(columns)


def from_table(table: pd.DataFrame) -> Transitions:
    """Inverse of :func:`to_table` (``goal_i`` appended to both observations again); other
    extra columns (hindsight labels) are ignored."""
    validate_table(table)
    goal = _gather(table, "goal")
    values = {f.name: None for f in fields(Transitions)}
    for name in values:
        if name in ("obs", "next_obs"):
            values[name] = np.concatenate([_gather(table, name), goal], axis=1)
        elif name == "action" and action_width(table):
            values[name] = _gather(table, "action").astype(CONTINUOUS_ACTION_DTYPE)
        else:
            values[name] = table[name].to_numpy(dtype=_DTYPES[name])
    return Transitions(**values)


def _spread(prefix: str, array: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{prefix}_{i}": np.ascontiguousarray(array[:, i]) for i in range(array.shape[1])}


def _gather(table: pd.DataFrame, prefix: str) -> np.ndarray:
    columns = [f"{prefix}_{i}" for i in range(family_width(table, prefix))]
    return table[columns].to_numpy(dtype=np.float32)


class TrajectoryTableError(HindsightRLError, ValueError):
    """A trajectory table breaks the DESIGN.md contract; the message names the problem."""


# Column kind by name: "i" integer, "f" finite float, "b" bool. Hindsight labels are optional.
_REQUIRED_KINDS = {"episode_id": "i", "t": "i", "reward": "f", "terminated": "b",
                   "truncated": "b"}
_ACTION_COLUMN = re.compile(r"action_\d+")
_HINDSIGHT_KINDS = {"return_to_go": "f", "episode_return": "f", "success": "b", "rtg_valid": "b",
                    "relabeled": "b"}
_KIND_NAMES = {"i": "integer", "f": "float", "b": "bool"}


def env_steps_of(table: pd.DataFrame) -> int:
    """Rows of a trajectory table that were environment steps (relabelled copies are not)."""
    return int((~table["relabeled"]).sum()) if "relabeled" in table else len(table)


def validate_table(table: pd.DataFrame, source: str = "trajectory table") -> None:
    """Check columns, dtypes, finite values, contiguous ``t`` within each episode and
    episode ends, raising :class:`TrajectoryTableError` naming ``source`` and the problem."""
    def fail(problem: str) -> None:
        raise TrajectoryTableError(f"{source}: {problem}")

    obs_dim = family_width(table, "obs")
    if obs_dim == 0 or family_width(table, "next_obs") != obs_dim:
        fail(f"expected columns obs_0..obs_<d-1> and as many next_obs_<i>, got "
             f"{obs_dim} obs and {family_width(table, 'next_obs')} next_obs columns")
    kinds = dict(_REQUIRED_KINDS)
    kinds.update(_action_kinds(table, fail))
    kinds.update({f"{prefix}_{i}": "f" for prefix in ("obs", "next_obs") for i in range(obs_dim)})
    kinds.update({f"goal_{i}": "f" for i in range(family_width(table, "goal"))})
    kinds.update({name: kind for name, kind in _HINDSIGHT_KINDS.items() if name in table})
    missing = [name for name in kinds if name not in table.columns]
    if missing:
        fail(f"missing columns {missing}")
    if len(table) == 0:
        fail("no rows")
    for name, kind in kinds.items():
        column = table[name]
        if column.dtype.kind != kind and not (kind == "f" and column.dtype.kind == "i"):
            fail(f"column {name!r} has dtype {column.dtype}, expected {_KIND_NAMES[kind]}")
        if kind == "f" and not np.isfinite(column.to_numpy(np.float64)).all():
            row = int(np.flatnonzero(~np.isfinite(column.to_numpy(np.float64)))[0])
            fail(f"column {name!r} has a non-finite value at row {row}: {column.iloc[row]}")
    episodes = table[~table["relabeled"]] if "relabeled" in table else table
    if len(episodes) == 0:
        fail("only relabelled rows: relabelling needs the episodes it came from")
    _check_episodes(episodes["episode_id"].to_numpy(), episodes["t"].to_numpy(),
                    (episodes["terminated"] | episodes["truncated"]).to_numpy(), fail)


def _action_kinds(table: pd.DataFrame, fail: Callable[[str], None]) -> dict[str, str]:
    """The action columns' kinds: ``action`` (integer) or ``action_0..`` (float), never
    both (which would be the action?) and never neither."""
    numbered = [str(c) for c in table.columns if _ACTION_COLUMN.fullmatch(str(c))]
    width = action_width(table)
    if "action" in table.columns and numbered:
        fail(f"both a discrete 'action' column and continuous columns {numbered}; a "
             "table holds one kind of action")
    if len(numbered) != width:
        fail(f"continuous action columns {sorted(numbered)} are not action_0..action_<d-1>")
    if "action" in table.columns:
        return {"action": "i"}
    if not width:
        fail("no action columns: expected an 'action' column (discrete) or "
             "action_0..action_<d-1> (continuous)")
    return {f"action_{i}": "f" for i in range(width)}


def action_width(table: pd.DataFrame) -> int:
    """Entries of a continuous action in ``table`` (``action_0..``); 0 for a discrete
    table (one ``action`` column)."""
    return family_width(table, "action")


def is_trajectory_table(table: pd.DataFrame) -> bool:
    """Whether ``table`` has the shape of a trajectory table (observations and actions)."""
    return "obs_0" in table.columns and ("action" in table.columns
                                         or "action_0" in table.columns)


def family_width(table: pd.DataFrame, prefix: str) -> int:
    """How many columns ``<prefix>_0``, ``<prefix>_1``, ... ``table`` has in a row."""
    width = 0
    while f"{prefix}_{width}" in table.columns:
        width += 1
    return width


def _check_episodes(episode_id: np.ndarray, t: np.ndarray, ended: np.ndarray,
                    fail: Callable[[str], None]) -> None:
    """Each episode's rows are consecutive with ``t`` = 0, 1, 2, ..., and an episode ends
    (terminated or truncated) on its last row and nowhere else."""
    starts = np.flatnonzero(np.r_[True, episode_id[1:] != episode_id[:-1]])
    if len(np.unique(episode_id)) != len(starts):
        fail("an episode's rows are not consecutive (an episode_id reappears later)")
    expected_t = np.arange(len(t)) - np.repeat(starts, np.diff(np.r_[starts, len(t)]))
    wrong = np.flatnonzero(t != expected_t)
    if len(wrong):
        row = int(wrong[0])
        fail(f"t is not contiguous within episode {episode_id[row]} "
             f"(row {row}: t={t[row]}, expected {expected_t[row]})")
    last = np.r_[starts[1:] - 1, len(t) - 1]
    is_last = np.zeros(len(t), bool)
    is_last[last] = True
    wrong = np.flatnonzero(ended != is_last)
    if len(wrong):
        row = int(wrong[0])
        where = "does not end on its last row" if is_last[row] else "ends before its last row"
        fail(f"episode {episode_id[row]} {where} (row {row}, t={t[row]})")
