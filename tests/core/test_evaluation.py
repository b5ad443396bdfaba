import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import trim_mean

from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.evaluation import (
    GreedyEvaluator,
    ValueScale,
    area_under_curve,
    best_acting,
    boltzmann,
    bootstrap_ci,
    count_endings,
    cycle_actions,
    env_action,
    evaluate_greedy,
    greedy,
    interquartile_mean,
    remembers,
    steps_to_threshold,
    trailing_cycle,
)
from tests.conftest import MINIGRID_VIEW


def test_interquartile_mean_ignores_the_tails():
    assert interquartile_mean(np.array([-1000, 1, 2, 3, 4, 5, 6, 1000])) == pytest.approx(3.5)


def test_interquartile_mean_along_an_axis_is_each_rows_own():
    rows = np.random.default_rng(0).normal(size=(6, 5))
    assert interquartile_mean(rows, axis=1).tolist() == pytest.approx(
        [interquartile_mean(row) for row in rows])
    assert interquartile_mean(rows[:, :3], axis=1).tolist() == pytest.approx(
        rows[:, :3].mean(axis=1).tolist())  # fewer than 4 values: their mean


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40))
def test_interquartile_mean_is_rliables(values):
    """rliable's IQM is scipy's 25% trimmed mean; ours is hand-written to spare users
    rliable's dependencies (arch, statsmodels, seaborn), so it must agree with it."""
    assert interquartile_mean(np.array(values)) == pytest.approx(
        trim_mean(values, 0.25), rel=1e-9, abs=1e-6)


def test_bootstrap_interval_brackets_the_estimate():
    values = np.random.default_rng(0).normal(10, 1, size=50)
    low, high = bootstrap_ci(values, 500, 0.95, np.random.default_rng(1))
    assert low < interquartile_mean(values) < high and high - low < 2


def test_steps_to_threshold_is_the_first_crossing():
    steps, returns = np.array([0, 10, 20, 30]), np.array([1, 5, 3, 9])
    assert steps_to_threshold(steps, returns, 5) == 10
    assert steps_to_threshold(steps, returns, 10) is None


def test_area_under_curve_is_a_mean_return_over_training():
    assert area_under_curve(np.array([0, 10]), np.array([0.0, 10.0])) == pytest.approx(5.0)


def test_greedy_evaluation_plays_one_episode_per_seed(corridor):
    def always_right(obs):
        return np.tile([0.0, 1.0], (len(obs), 1))

    def never_moves(obs):
        return np.tile([1.0, 0.0], (len(obs), 1))

    assert evaluate_greedy(corridor, greedy(always_right), [1, 2, 3]).tolist() == [-2.0] * 3
    assert evaluate_greedy(corridor, greedy(never_moves), [1]).tolist() == [-5.0]  # time limit


def _by_hand(env_id: str, seed: int, act) -> float:
    """One episode's return, stepping a plain ``gymnasium.make`` env with ``act(obs)``."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


def test_a_continuous_policy_is_played_as_stepping_the_env_by_hand():
    torque = np.array([0.5], np.float32)
    evaluator = GreedyEvaluator(EnvConfig(id="Pendulum-v1"), [0, 1])
    try:
        returns = evaluator.run(lambda obs: np.tile(torque, (len(obs), 1)))
    finally:
        evaluator.close()
    expected = [_by_hand("Pendulum-v1", seed, lambda obs: torque) for seed in (0, 1)]
    assert returns.tolist() == expected
    assert expected[0] != expected[1]  # the seeds matter, so each env kept its own


def test_a_q_function_is_played_by_its_argmax_as_before():
    """``greedy`` keeps a Q-network's play as it was: ``int(argmax)`` of its Q-values."""
    weights = np.random.default_rng(0).normal(size=(4, 2))
    returns = evaluate_greedy(EnvConfig(id="CartPole-v1"), greedy(lambda obs: obs @ weights),
                              [3, 4])
    expected = [_by_hand("CartPole-v1", seed, lambda obs: int((obs @ weights).argmax()))
                for seed in (3, 4)]
    assert returns.tolist() == expected


def test_greedy_is_the_argmax_and_env_action_what_step_takes():
    actions = greedy(lambda obs: obs)(np.array([[0.1, 0.9, 0.2], [3.0, -1.0, 2.0]]))
    assert actions.tolist() == [1, 0]
    assert type(env_action(actions[0])) is int and env_action(actions[0]) == 1
    batch = np.array([[0.25, -1.5]], np.float64)
    vector = env_action(batch[0])
    assert vector.dtype == np.float32 and vector.tolist() == [0.25, -1.5]
    vector[0] = 9.0
    assert batch[0, 0] == 0.25  # a copy: the env may keep it without aliasing the batch


@pytest.mark.parametrize(("success", "push", "expected"), [
    ("terminated", 1, [False, False]),   # pushing right alone never reaches the flag
    ("truncated", 1, [True, True]),      # ... so every episode lasts to the time limit
    ("none", 1, None),
])
def test_the_evaluator_says_which_episodes_ended_in_the_tasks_success(success, push, expected):
    evaluator = GreedyEvaluator(EnvConfig(id="MountainCar-v0", success=success), [0, 1])
    try:
        evaluator.run(lambda obs: np.full(len(obs), push))
    finally:
        evaluator.close()
    assert (None if evaluator.successes is None else evaluator.successes.tolist()) == expected


def test_reaching_the_goal_is_a_success_and_a_fall_is_not():
    """CartPole's fall ends by termination, so under ``success: truncated`` it is no success;
    a MountainCar policy that swings with the velocity reaches the flag: a termination."""
    evaluator = GreedyEvaluator(EnvConfig(id="CartPole-v1", success="truncated"), [0])
    try:
        evaluator.run(lambda obs: np.zeros(len(obs), int))
        assert evaluator.successes.tolist() == [False]
    finally:
        evaluator.close()
    evaluator = GreedyEvaluator(EnvConfig(id="MountainCar-v0", success="terminated"), [0])
    try:
        evaluator.run(lambda obs: np.where(obs[:, 1] >= 0, 2, 0))
        assert evaluator.successes.tolist() == [True]
    finally:
        evaluator.close()


@pytest.mark.parametrize(("steps", "period"), [
    ("xaaa", 1),
    ("xyzababab", 2),
    ("abcabcabc", 3),
    ("abababa", 2),          # the last six steps repeat with period 2
    ("xyabab", None),        # twice is not enough
    ("abcdefgh", None),
    ("", None),
])
def test_the_trailing_cycle_is_the_shortest_period_the_last_steps_repeat_three_times(
        steps, period):
    assert trailing_cycle(list(steps), 4) == period


def test_a_cycle_longer_than_the_longest_watched_is_not_one():
    assert trailing_cycle(list("abcdeabcdeabcde"), 4) is None
    assert trailing_cycle(list("abcdeabcdeabcde"), 5) == 5


def test_a_cycles_actions_start_where_they_sort_first():
    left_right = [(b"A", 1), (b"B", 0)] * 3
    assert cycle_actions(left_right, 4) == (0, 1)
    assert cycle_actions(left_right[1:] + [(b"A", 1)], 4) == (0, 1)  # the same loop
    assert cycle_actions([(b"A", 1), (b"B", 0), (b"C", 2)], 4) is None


def test_endings_count_successes_cycles_and_the_rest():
    endings = count_endings(np.array([True, False, False, False]),
                            [None, (0, 1), None, (0, 1)])
    assert endings == {"cycle 0 1": 2, "success": 1, "no short cycle": 1}
    assert count_endings(None, [(2,), None]) == {"cycle 2": 1, "no short cycle": 1}


def _minigrid(env_id: str) -> EnvConfig:
    return EnvConfig(id=env_id, success="terminated", observation=MINIGRID_VIEW)


def test_a_greedy_policy_pushing_into_a_wall_ends_stuck_in_a_cycle_of_one_step():
    """MiniGrid-Empty-5x5: always forward reaches the east wall and stays there; always
    turning left spins through four views; the scripted route to the goal succeeds."""
    evaluator = GreedyEvaluator(_minigrid("MiniGrid-Empty-5x5-v0"), [0, 1], longest_cycle=8)
    forward = evaluator.run(lambda obs: np.full(len(obs), 2))
    assert forward.tolist() == [0.0, 0.0]
    assert evaluator.cycles == [(2,), (2,)]
    evaluator.run(lambda obs: np.zeros(len(obs), np.int64))
    assert evaluator.cycles == [(0, 0, 0, 0), (0, 0, 0, 0)]
    route = iter([2, 2, 1, 2, 2])  # east, east, turn right (south), south, south: the goal
    evaluator = GreedyEvaluator(_minigrid("MiniGrid-Empty-5x5-v0"), [0], longest_cycle=8)
    evaluator.run(lambda obs: np.array([next(route)]))
    assert evaluator.successes.tolist() == [True] and evaluator.cycles == [None]
    assert count_endings(evaluator.successes, evaluator.cycles) == {"success": 1}


def test_without_watching_cycles_no_episode_has_one():
    evaluator = GreedyEvaluator(_minigrid("MiniGrid-Empty-5x5-v0"), [0])
    evaluator.run(lambda obs: np.full(len(obs), 2))
    assert evaluator.cycles == [None]


class _Remembering:
    """A recurrent Q-function's shape: ``start(episodes)``, then one call per step."""

    def __init__(self) -> None:
        self.started = None

    def start(self, episodes: int) -> None:
        self.started = episodes

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.tile([0.0, 0.05, 1.0], (len(obs), 1))


def test_boltzmann_draws_repeat_with_their_seed_and_keep_a_memory():
    q_values = _Remembering()
    hot = boltzmann(q_values, 10.0, np.random.default_rng(3))
    assert remembers(hot)
    hot.start(4)
    assert q_values.started == 4
    drawn = hot(np.zeros((4000, 1)))
    assert set(drawn.tolist()) == {0, 1, 2}
    assert np.array_equal(boltzmann(q_values, 10.0, np.random.default_rng(3))(
        np.zeros((4000, 1))), drawn)
    cold = boltzmann(q_values, 1e-3, np.random.default_rng(3))(np.zeros((50, 1)))
    assert (cold == 2).all()
    assert (boltzmann(q_values, 0.0, np.random.default_rng(3))(np.zeros((5, 1))) == 2).all()


def test_value_scale_averages_the_best_actions_magnitude():
    scale = ValueScale(lambda obs: np.array([[1.0, -3.0], [-2.0, -5.0]])[:len(obs)])
    assert scale(np.zeros((2, 1))).shape == (2, 2)
    scale(np.zeros((1, 1)))
    assert scale.mean == pytest.approx((1.0 + 2.0 + 1.0) / 3)


def _ranks(first: int, by: float):
    """Q-values that rank action ``first`` of the corridor's two first by ``by`` everywhere."""
    row = np.full(2, -1.0 - by)
    row[first] = -1.0
    return lambda obs: np.tile(row, (len(obs), 1))


def test_best_acting_plays_the_temperature_that_scores_higher_than_the_argmax(corridor):
    evaluator = GreedyEvaluator(corridor, range(10, 30))
    stays = _ranks(0, by=0.05)  # its argmax never leaves the start; warm draws do
    returns, temperature = best_acting(evaluator, stays, (0.001, 0.1), None,
                                       np.random.default_rng(0))
    assert temperature == pytest.approx(0.1)  # 0.1 × a mean |max Q| of 1; 0.001 is the argmax
    assert returns.mean() > -5.0
    returns, temperature = best_acting(evaluator, stays, (), None, np.random.default_rng(0))
    assert temperature == 0.0 and (returns == -5.0).all()


@pytest.mark.parametrize(("threshold", "runs"), [(-2.0, 1), (None, 2)])
def test_an_argmax_at_the_threshold_is_kept_without_trying_a_temperature(
        corridor, threshold, runs):
    evaluator = GreedyEvaluator(corridor, range(10, 30))
    played = []
    run = evaluator.run
    evaluator.run = lambda actions: played.append(actions) or run(actions)
    returns, temperature = best_acting(evaluator, _ranks(1, by=1.0), (0.01,), threshold,
                                       np.random.default_rng(0))
    assert temperature == 0.0 and (returns == -2.0).all()  # the argmax walks to the goal
    assert len(played) == runs
