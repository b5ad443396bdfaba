"""Hindsight labels: once an episode is over, every transition learns how it turned out,
and, on goal-reaching tasks, which goals it did reach (HER's relabelling).

Choice on truncation (DESIGN.md, method 4): a cut episode's return-to-go is a partial sum,
not a return. We keep the partial sum in the table (``truncated`` says so) and leave such
transitions out of the regression loss (``rtg_valid`` is false for them); only episodes
that really ended teach ``Q(s_t, a_t) ≈ G_t``. TD learning still uses every transition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from hindsight_rl.core.config import GoalConfig
from hindsight_rl.core.trajectories import Transitions, to_table


def returns_to_go(rewards: np.ndarray, episode_id: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + γ G_{t+1}`` within each episode, restarting at every episode boundary."""
    rtg = np.empty(len(rewards), dtype=np.float64)
    running = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        if i == len(rewards) - 1 or episode_id[i + 1] != episode_id[i]:
            running = 0.0
        running = float(rewards[i]) + gamma * running
        rtg[i] = running
    return rtg.astype(np.float32)


@dataclass(frozen=True)
class Bootstrap:
    """What a TD target is built from: ``reward + discount · Q_target(next_obs, a*)``."""

    reward: np.ndarray
    """``Σ_{j<m} γ^j r_{t+j}``, ``m = min(n, steps left in the episode)``."""
    next_obs: np.ndarray
    """The observation after those ``m`` steps."""
    discount: np.ndarray
    """``γ^m``, or 0 where the episode terminated within them (truncation bootstraps)."""


def n_step_bootstrap(reward: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray,
                     episode_id: np.ndarray, gamma: float, n: int) -> Bootstrap:
    """n-step TD targets (Sutton & Barto ch. 7; Rainbow's n = 3) for transitions stored in
    episode order: each looks ``n`` steps ahead within its own run of equal ``episode_id``
    and no further. ``n = 1`` is the one-step target. A hindsight label like the
    return-to-go: it needs the rest of the episode, so it is written once the episode ends.
    """
    rows = np.arange(len(reward))
    steps = np.minimum(n, _last_row_of_run(episode_id) - rows + 1)
    total = np.zeros(len(reward), np.float64)
    for j in range(n):
        ahead = rows[j < steps]
        total[ahead] += gamma ** j * reward[ahead + j]
    end = rows + steps - 1
    discount = gamma ** steps * (1.0 - np.asarray(terminated, np.float64)[end])
    return Bootstrap(total.astype(np.float32), next_obs[end], discount.astype(np.float32))


def _last_row_of_run(episode_id: np.ndarray) -> np.ndarray:
    """Per row, the index of the last row of its run of equal ``episode_id``."""
    bounds = np.array(_episode_bounds(episode_id)).reshape(-1, 2)
    return np.repeat(bounds[:, 1] - 1, bounds[:, 1] - bounds[:, 0])


def episode_end_flags(transitions: Transitions) -> tuple[np.ndarray, np.ndarray]:
    """Per transition: did its episode end by termination, and how long was the episode."""
    _, inverse, counts = np.unique(transitions.episode_id, return_inverse=True,
                                   return_counts=True)
    ended_per_episode = np.zeros(len(counts), dtype=bool)
    np.logical_or.at(ended_per_episode, inverse, transitions.terminated)
    ended = ended_per_episode[inverse]
    return ended, counts[inverse]


def goal_reached(achieved: np.ndarray, desired: np.ndarray, goal: GoalConfig) -> np.ndarray:
    """Whether ``achieved`` reaches ``desired`` (goal vectors on the last axis, broadcast)."""
    if goal.reached == "at_least":
        return (achieved >= desired).all(axis=-1)
    return np.linalg.norm(achieved - desired, axis=-1) <= goal.tolerance


def discounted_steps(steps: np.ndarray, goal: GoalConfig, gamma: float) -> np.ndarray:
    """Return-to-go of ``steps`` non-reaching steps followed by the reaching one."""
    steps = np.asarray(steps, np.float64)
    if gamma == 1.0:
        lead = steps
    else:
        lead = (1.0 - gamma ** steps) / (1.0 - gamma)
    return goal.step_reward * lead + gamma ** steps * goal.reached_reward


@dataclass(frozen=True)
class Relabelled:
    """Copies of transitions whose goal is one achieved later in their episode."""

    transitions: Transitions
    """``obs`` and ``next_obs`` carry the relabelled goal; reward and ``terminated`` are
    recomputed for it; ``episode_id`` and ``t`` name the transition each copy came from."""
    return_to_go: np.ndarray
    """Exact: the relabelled goal is reached within the episode by construction."""

    def __len__(self) -> int:
        return len(self.transitions)


def relabel_future(transitions: Transitions, goal: GoalConfig, k: int, gamma: float,
                   rng: np.random.Generator) -> Relabelled:
    """HER's "future" strategy over stored rollouts (no environment is touched): ``k`` copies
    of every transition, each with the goal achieved after a uniformly drawn step at or
    after it in the same episode.

    The copy's reward follows ``goal`` (reached or not on this step), it terminates where the
    new goal is reached, or where the episode ended for a reason other than its original
    goal (a failure stays a failure), and its return-to-go is counted to the first step
    that reaches the new goal. Observations end with the goal (``len(goal.desired)``
    entries), as :class:`~hindsight_rl.core.envs.GoalObservation` builds them.
    """
    width = transitions.obs_dim - len(goal.desired)
    achieved = transitions.next_obs[:, list(goal.achieved)]
    failed = transitions.terminated & ~goal_reached(
        achieved, transitions.obs[:, width:], goal)
    rows, goals, steps = [], [], []
    for start, end in _episode_bounds(transitions.episode_id):
        length = end - start
        t = np.repeat(np.arange(length), k)
        later = t + (rng.random(len(t)) * (length - t)).astype(np.int64)
        new_goals = achieved[start + later]
        reached = goal_reached(achieved[None, start:end], new_goals[:, None], goal)
        reached &= np.arange(length)[None, :] >= t[:, None]
        rows.append(start + t)
        goals.append(new_goals)
        steps.append(reached.argmax(axis=1) - t)
    rows_, goals_ = np.concatenate(rows), np.concatenate(goals).astype(np.float32)
    steps_ = np.concatenate(steps)
    reached_now = steps_ == 0
    copies = replace(
        _take(transitions, rows_),
        obs=np.concatenate([transitions.obs[rows_, :width], goals_], axis=1),
        next_obs=np.concatenate([transitions.next_obs[rows_, :width], goals_], axis=1),
        reward=np.where(reached_now, goal.reached_reward, goal.step_reward).astype(np.float32),
        terminated=reached_now | failed[rows_],
        truncated=np.zeros(len(rows_), bool))
    return Relabelled(copies, discounted_steps(steps_, goal, gamma).astype(np.float32))


def _episode_bounds(episode_id: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` rows of each run of equal ``episode_id``."""
    starts = np.flatnonzero(np.r_[True, episode_id[1:] != episode_id[:-1]])
    ends = np.r_[starts[1:], len(episode_id)]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _take(transitions: Transitions, rows: np.ndarray) -> Transitions:
    return Transitions(**{name: value[rows] for name, value in vars(transitions).items()})


def label_hindsight(transitions: Transitions, gamma: float,
                    success: Literal["terminated", "truncated", "none"] = "none",
                    max_episode_steps: int | None = None, goal: GoalConfig | None = None,
                    her_k: int = 0, seed: int = 0) -> pd.DataFrame:
    """The hindsight dataset: the trajectory table plus ``return_to_go``, ``episode_return``,
    ``success`` and ``rtg_valid`` (the episode ended by termination, so ``G_t`` is exact).

    ``success`` for ``terminated`` tasks is reaching the terminal state (MountainCar's goal);
    for ``truncated`` tasks it is surviving to the time limit (CartPole). On a task with a
    ``goal`` (its ``goal_i`` columns), ``her_k > 0`` appends that many relabelled copies of
    each row (``relabeled`` true; :func:`relabel_future`, its draws seeded by ``seed``), each a
    success with an exact return-to-go; ``episode_return`` stays that of the source episode.
    """
    goal_dim = 0 if goal is None else len(goal.desired)
    table = _labelled_table(transitions, gamma, success, max_episode_steps, goal_dim)
    if goal is None or her_k == 0:
        return table
    relabelled = relabel_future(transitions, goal, her_k, gamma, np.random.default_rng(seed))
    copies = to_table(relabelled.transitions, goal_dim)
    copies["return_to_go"] = relabelled.return_to_go
    source_rows = np.repeat(np.arange(len(transitions)), her_k)
    copies["episode_return"] = table["episode_return"].to_numpy()[source_rows]
    if "success" in table:
        copies["success"] = True
    copies["rtg_valid"] = True
    copies["relabeled"] = True
    table["relabeled"] = False
    return pd.concat([table, copies], ignore_index=True)


def _labelled_table(transitions: Transitions, gamma: float,
                    success: Literal["terminated", "truncated", "none"],
                    max_episode_steps: int | None, goal_dim: int) -> pd.DataFrame:
    table = to_table(transitions, goal_dim)
    table["return_to_go"] = returns_to_go(transitions.reward, transitions.episode_id, gamma)
    table["episode_return"] = (table.groupby("episode_id")["reward"].transform("sum")
                               .astype(np.float32))
    ended, length = episode_end_flags(transitions)
    if success == "terminated":
        table["success"] = ended
    elif success == "truncated":
        table["success"] = (~ended) & (length >= (max_episode_steps or np.inf))
    table["rtg_valid"] = ended
    return table
