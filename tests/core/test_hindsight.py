import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hindsight_rl.core.config import GoalConfig
from hindsight_rl.core.hindsight import (
    label_hindsight,
    n_step_bootstrap,
    relabel_future,
    returns_to_go,
)
from hindsight_rl.core.trajectories import (
    TrajectoryTableError,
    from_table,
    transitions_from_lists,
    validate_table,
)


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
@given(st.lists(st.tuples(st.integers(1, 7), st.booleans()), min_size=1, max_size=5),
       st.integers(1, 5), st.floats(0.5, 1.0), st.randoms(use_true_random=False))
def test_n_step_targets_match_walking_each_episode_forward(episodes, n, gamma, random):
    """Each row sums up to n rewards of its own episode, then bootstraps from the observation
    it reached, unless the episode terminated on the way (truncation still bootstraps)."""
    ids = np.concatenate([np.full(length, e) for e, (length, _) in enumerate(episodes)])
    terminated = np.concatenate([np.arange(length) == (length - 1 if ends else -1)
                                 for length, ends in episodes])
    reward = np.array([random.uniform(-2, 2) for _ in ids], np.float32)
    next_obs = np.arange(len(ids), dtype=np.float32)[:, None] + 1
    bootstrap = n_step_bootstrap(reward, next_obs, terminated, ids, gamma, n)
    for i in range(len(ids)):
        expected, j = 0.0, i
        while True:
            expected += gamma ** (j - i) * reward[j]
            if j - i + 1 == n or j + 1 == len(ids) or ids[j + 1] != ids[i]:
                break
            j += 1
        assert bootstrap.reward[i] == pytest.approx(expected, abs=1e-4)
        assert bootstrap.next_obs[i, 0] == j + 1
        cut = terminated[j]
        assert bootstrap.discount[i] == pytest.approx(0.0 if cut else gamma ** (j - i + 1))


def test_one_step_targets_are_the_transitions_themselves():
    reward = np.array([1.0, 2.0, 3.0], np.float32)
    next_obs = np.array([[1.0], [2.0], [3.0]], np.float32)
    bootstrap = n_step_bootstrap(reward, next_obs, np.array([False, False, True]),
                                 np.zeros(3, np.int64), 0.9, 1)
    assert bootstrap.reward.tolist() == reward.tolist()
    assert bootstrap.next_obs.tolist() == next_obs.tolist()
    assert bootstrap.discount.tolist() == [np.float32(0.9), np.float32(0.9), 0.0]


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


# --- goal relabelling (HER) -------------------------------------------------------------

GOAL = GoalConfig(achieved=(0,), desired=(3.0,), reached="at_least", step_reward=-1.0,
                  reached_reward=0.0)


def _goal_episodes(positions_per_episode, desired=3.0, failed_last=False):
    """Episodes of a 1-d walk: obs = [position, desired goal], as GoalObservation builds."""
    columns = {k: [] for k in ("episode_id", "t", "obs", "action", "reward", "next_obs",
                               "terminated", "truncated")}
    for episode, positions in enumerate(positions_per_episode):
        for t in range(len(positions) - 1):
            last = t == len(positions) - 2
            reached = positions[t + 1] >= desired
            for key, value in (("episode_id", episode), ("t", t),
                               ("obs", [positions[t], desired]), ("action", 1),
                               ("reward", 0.0 if reached else -1.0),
                               ("next_obs", [positions[t + 1], desired]),
                               ("terminated", reached or (last and failed_last)),
                               ("truncated", last and not reached and not failed_last)):
                columns[key].append(value)
    return transitions_from_lists(**columns)


def _brute_force_copy(positions, t, goal_value, gamma):
    """Reward, terminated and return-to-go of step ``t`` relabelled with ``goal_value``,
    by walking the episode."""
    rtg, discount = 0.0, 1.0
    for i in range(t, len(positions) - 1):
        reached = positions[i + 1] >= goal_value
        rtg += discount * (0.0 if reached else -1.0)
        discount *= gamma
        if reached:
            break
    first_reached = positions[t + 1] >= goal_value
    return (0.0 if first_reached else -1.0), first_reached, rtg


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-3, 3), min_size=2, max_size=8), min_size=1,
                max_size=3),
       st.integers(1, 4), st.sampled_from([0.5, 0.9, 1.0]), st.integers(0, 10_000))
def test_future_relabelling_matches_walking_the_episode(walks, k, gamma, seed):
    positions = [np.cumsum([0, *steps]).astype(float).tolist() for steps in walks]
    transitions = _goal_episodes(positions, desired=100.0)  # never reached by the walk
    copies = relabel_future(transitions, GOAL, k, gamma, np.random.default_rng(seed))
    assert len(copies) == k * len(transitions)
    rows = np.repeat(np.arange(len(transitions)), k)
    np.testing.assert_array_equal(copies.transitions.obs[:, 0], transitions.obs[rows, 0])
    np.testing.assert_array_equal(copies.transitions.action, transitions.action[rows])
    for i, row in enumerate(rows):
        episode, t = transitions.episode_id[row], transitions.t[row]
        walk = positions[episode]
        goal_value = copies.transitions.obs[i, 1]
        assert copies.transitions.next_obs[i, 1] == goal_value
        assert goal_value in walk[t + 1:], "a goal achieved at or after this step"
        reward, terminated, rtg = _brute_force_copy(walk, t, goal_value, gamma)
        assert copies.transitions.reward[i] == reward
        assert bool(copies.transitions.terminated[i]) == terminated
        assert copies.return_to_go[i] == pytest.approx(rtg, rel=1e-5, abs=1e-5)


def test_a_failure_stays_terminal_under_any_goal():
    transitions = _goal_episodes([[0.0, 1.0, 0.0]], failed_last=True)
    copies = relabel_future(transitions, GOAL, 4, 0.9, np.random.default_rng(0))
    last = copies.transitions.t == 1
    assert copies.transitions.terminated[last].all()


def test_hindsight_table_holds_relabelled_rows_beside_the_episodes():
    transitions = _goal_episodes([[0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    table = label_hindsight(transitions, 0.9, "terminated", 3, GOAL, her_k=2, seed=1)
    validate_table(table)
    assert len(table) == 3 * len(transitions)
    assert table["relabeled"].sum() == 2 * len(transitions)
    assert [c for c in table.columns if c.startswith(("obs_", "goal_"))] == ["obs_0", "goal_0"]
    relabelled = table[table["relabeled"]]
    assert relabelled["rtg_valid"].all() and relabelled["success"].all()
    originals = table[~table["relabeled"]]
    assert (originals["goal_0"] == 3.0).all()
    back = from_table(table)
    np.testing.assert_array_equal(back.obs[:, 1], table["goal_0"].to_numpy())
    again = label_hindsight(transitions, 0.9, "terminated", 3, GOAL, her_k=2, seed=1)
    pd.testing.assert_frame_equal(table, again)


def test_relabelled_rows_are_not_episodes_to_the_validator():
    table = label_hindsight(_goal_episodes([[0.0, 1.0, 2.0]]), 0.9, "terminated", 3, GOAL,
                            her_k=1)
    with pytest.raises(TrajectoryTableError, match="only relabelled rows"):
        validate_table(table.assign(relabeled=True))


# --- Continuous actions: copied as vectors, never indexed as integers --------------------

_ACTIONS = np.array([[0.25, -1.5], [-0.75, 0.125], [1.0, 2.0], [0.5, -0.5], [-2.0, 0.0]],
                    np.float32)


def _continuous(obs: np.ndarray, terminated, truncated, reward=(-1.0, -2.0, -3.0, -4.0, -5.0)):
    return transitions_from_lists(episode_id=[0, 0, 0, 1, 1], t=[0, 1, 2, 0, 1], obs=obs,
                                  action=list(_ACTIONS), reward=list(reward),
                                  next_obs=obs + 0.1, terminated=terminated,
                                  truncated=truncated)


def test_labels_of_a_continuous_episode_are_the_hand_computed_returns_to_go():
    transitions = _continuous(np.zeros((5, 3)), [False, False, True, False, False],
                              [False, False, False, False, True])
    table = label_hindsight(transitions, gamma=0.5, success="terminated")
    validate_table(table)
    # episode 0: -3; -2 + 0.5·-3 = -3.5; -1 + 0.5·-3.5 = -2.75. episode 1: -5; -4 - 2.5
    assert table["return_to_go"].tolist() == [-2.75, -3.5, -3.0, -6.5, -5.0]
    assert table["episode_return"].tolist() == [-6, -6, -6, -9, -9]
    assert table["rtg_valid"].tolist() == [True, True, True, False, False]
    np.testing.assert_array_equal(table[["action_0", "action_1"]].to_numpy(), _ACTIONS)
    np.testing.assert_array_equal(from_table(table).action, _ACTIONS)


def test_relabelled_copies_carry_their_source_rows_continuous_actions():
    goal = GoalConfig(achieved=(0,), desired=(9.0,), reached="at_least")
    position = np.array([0.0, 1.0, 2.0, 0.0, 1.0])
    obs = np.stack([position, np.full(5, 9.0)], axis=1)
    transitions = _continuous(obs, [False] * 5, [False, False, True, False, True])
    relabelled = relabel_future(transitions, goal, k=3, gamma=0.9, rng=np.random.default_rng(0))
    sources = np.repeat(np.arange(5), 3)
    assert relabelled.transitions.action.dtype == np.float32
    np.testing.assert_array_equal(relabelled.transitions.action, _ACTIONS[sources])
    table = label_hindsight(transitions, 0.9, goal=goal, her_k=3, seed=0)
    validate_table(table)
    copies = table[table["relabeled"]]
    np.testing.assert_array_equal(copies[["action_0", "action_1"]].to_numpy(),
                                  _ACTIONS[sources])
    assert copies["t"].tolist() == transitions.t[sources].tolist()
