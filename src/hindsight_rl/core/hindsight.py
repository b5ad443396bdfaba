"""Hindsight labels: once an episode is over, every transition learns how it turned out.

Choice on truncation (DESIGN.md, method 4): a cut episode's return-to-go is a partial sum,
not a return. We keep the partial sum in the table (``truncated`` says so) and leave such
transitions out of the regression loss (``rtg_valid`` is false for them); only episodes
that really ended teach ``Q(s_t, a_t) ≈ G_t``. TD learning still uses every transition.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

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


def episode_end_flags(transitions: Transitions) -> tuple[np.ndarray, np.ndarray]:
    """Per transition: did its episode end by termination, and how long was the episode."""
    _, inverse, counts = np.unique(transitions.episode_id, return_inverse=True,
                                   return_counts=True)
    ended_per_episode = np.zeros(len(counts), dtype=bool)
    np.logical_or.at(ended_per_episode, inverse, transitions.terminated)
    ended = ended_per_episode[inverse]
    return ended, counts[inverse]


def label_hindsight(transitions: Transitions, gamma: float,
                    success: Literal["terminated", "truncated", "none"] = "none",
                    max_episode_steps: int | None = None) -> pd.DataFrame:
    """The hindsight dataset: the trajectory table plus ``return_to_go``, ``episode_return``,
    ``success`` and ``rtg_valid`` (the episode ended by termination, so ``G_t`` is exact).

    ``success`` for ``terminated`` tasks is reaching the terminal state (MountainCar's goal);
    for ``truncated`` tasks it is surviving to the time limit (CartPole).
    """
    table = to_table(transitions)
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
