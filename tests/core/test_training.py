import numpy as np

from hindsight_rl.core.config import GoalConfig
from hindsight_rl.core.hindsight import label_hindsight
from hindsight_rl.core.training import warm_start_from_table
from hindsight_rl.core.trajectories import transitions_from_lists

GOAL = GoalConfig(achieved=(0,), desired=(3.0,), reached="at_least", reached_reward=0.0)


def _walk(positions: list[float]):
    """One episode of a 1-d walk with obs = [position, desired goal]."""
    n = len(positions) - 1
    reached = [p >= 3.0 for p in positions[1:]]
    return transitions_from_lists(
        episode_id=np.zeros(n), t=np.arange(n),
        obs=[[p, 3.0] for p in positions[:-1]], action=np.ones(n),
        reward=[0.0 if r else -1.0 for r in reached],
        next_obs=[[p, 3.0] for p in positions[1:]], terminated=reached,
        truncated=np.zeros(n, bool))


def test_warm_start_counts_only_env_steps_and_keeps_copies_one_step():
    table = label_hindsight(_walk([0.0, 1.0, 2.0, 3.0]), 0.5, "terminated", 10, GOAL,
                            her_k=2, seed=0)
    warm = warm_start_from_table(table)
    assert warm.env_steps == 3 and len(warm) == 9
    bootstrap = warm.bootstrap(gamma=0.5, n=3)
    assert bootstrap.discount[:3].tolist() == [0.0, 0.0, 0.0]  # the episode ends in 3 steps
    assert bootstrap.next_obs[0].tolist() == [3.0, 3.0]
    copies = table["relabeled"].to_numpy()
    one_step = np.where(warm.terminated[copies], 0.0, 0.5)
    assert bootstrap.discount[copies].tolist() == one_step.tolist()
    assert bootstrap.next_obs[copies].tolist() == warm.next_obs[copies].tolist()
