import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hindsight_rl.core.hindsight import label_hindsight, returns_to_go
from hindsight_rl.core.trajectories import transitions_from_lists, validate_table


def _transitions(episode_id, reward, terminated, truncated):
    n = len(reward)
    t = np.concatenate([np.arange(np.sum(np.asarray(episode_id) == e))
                        for e in dict.fromkeys(episode_id)])
    return transitions_from_lists(episode_id=episode_id, t=t, obs=np.zeros((n, 2)),
                                  action=np.zeros(n), reward=reward,
                                  next_obs=np.zeros((n, 2)), terminated=terminated,
                                  truncated=truncated)


def test_returns_to_go_restart_at_each_episode():
    rtg = returns_to_go(np.array([1.0, 1.0, 1.0, 2.0, 2.0]), np.array([0, 0, 0, 1, 1]), 0.5)
    np.testing.assert_allclose(rtg, [1.75, 1.5, 1.0, 3.0, 2.0])


def test_returns_to_go_with_gamma_one_is_suffix_sum():
    rewards = np.array([-1.0, -1.0, -1.0, 0.0])
    np.testing.assert_allclose(returns_to_go(rewards, np.zeros(4), 1.0), [-3, -2, -1, 0])


def test_only_terminated_episodes_have_exact_returns_to_go():
    transitions = _transitions([0, 0, 1, 1, 1], [-1, 0, -1, -1, -1],
                               [False, True, False, False, False],
                               [False, False, False, False, True])
    table = label_hindsight(transitions, gamma=1.0, success="terminated")
    assert table["rtg_valid"].tolist() == [True, True, False, False, False]
    assert table["success"].tolist() == [True, True, False, False, False]
    # A truncated episode keeps its partial sum, flagged so the loss can leave it out.
    assert table["return_to_go"].tolist() == [-1, 0, -3, -2, -1]
    assert table["episode_return"].tolist() == [-1, -1, -3, -3, -3]


def test_survival_success_needs_the_full_time_limit():
    transitions = _transitions([0, 0, 1, 1, 1], [1] * 5, [False, True, False, False, False],
                               [False, False, False, False, True])
    table = label_hindsight(transitions, 0.99, success="truncated", max_episode_steps=3)
    assert table["success"].tolist() == [False, False, True, True, True]


@pytest.mark.parametrize("success", ["none"])
def test_no_success_column_when_task_defines_none(success):
    table = label_hindsight(_transitions([0], [1.0], [True], [False]), 0.9, success=success)
    assert "success" not in table.columns
    assert table["return_to_go"].dtype == np.float32


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6),
       st.floats(0.0, 1.0), st.randoms(use_true_random=False))
def test_return_to_go_recurrence_holds_inside_episodes_only(lengths, gamma, random):
    ids = np.repeat(np.arange(len(lengths)), lengths)
    rewards = np.array([random.uniform(-2, 2) for _ in ids], dtype=np.float32)
    rtg = returns_to_go(rewards, ids, gamma)
    for i in range(len(ids)):
        last = i == len(ids) - 1 or ids[i + 1] != ids[i]
        expected = rewards[i] + (0.0 if last else gamma * rtg[i + 1])
        assert rtg[i] == pytest.approx(expected, abs=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=6),
       st.randoms(use_true_random=False))
def test_labels_follow_how_each_episode_ended(episodes, random):
    """Terminated episodes get exact labels; truncated ones keep partial sums, flagged
    invalid; with γ = 1 the first return-to-go of an episode is its return."""
    ids = np.repeat(np.arange(len(episodes)), [n for n, _ in episodes])
    ends = np.r_[ids[1:] != ids[:-1], True]
    terminated_episode = np.array([term for _, term in episodes])[ids]
    rewards = [random.choice([-1.0, 0.0, 1.0]) for _ in ids]
    table = label_hindsight(_transitions(ids.tolist(), rewards, ends & terminated_episode,
                                         ends & ~terminated_episode), 1.0, "terminated")
    validate_table(table)
    assert (table["rtg_valid"] == terminated_episode).all()
    assert (table["success"] == terminated_episode).all()
    starts = table["t"] == 0
    np.testing.assert_allclose(table.loc[starts, "return_to_go"],
                               table.loc[starts, "episode_return"])
    np.testing.assert_allclose(table.loc[ends, "return_to_go"], table.loc[ends, "reward"])
