import numpy as np
import pytest
import torch

from hindsight_rl.core.config import CollectConfig, EnvConfig, NetworkConfig
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.rollouts import (
    BehaviourPolicyError,
    behaviour_policy,
    boltzmann_probabilities,
    collect_rollouts,
    q_function,
)
from hindsight_rl.core.trajectories import from_table, to_table


def test_episode_boundaries_carry_no_reset_observation(corridor):
    # Always step right: episodes of 3 steps, each ending in termination at position 3.
    transitions = collect_rollouts(corridor, 7, lambda obs: 1, seed=0)
    assert transitions.episode_id.tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert transitions.t.tolist() == [0, 1, 2, 0, 1, 2, 0]
    ends = np.flatnonzero(transitions.terminated)
    # The last transition of an episode leads to its own final state, never to the next
    # episode's reset state, and the next episode starts from the reset state.
    assert transitions.next_obs[ends, 0].tolist() == [3.0, 3.0]
    assert transitions.obs[ends + 1, 0].tolist() == [0.0, 0.0]


def test_time_limit_truncates_without_terminating(corridor):
    transitions = collect_rollouts(corridor, 6, lambda obs: 0, seed=0)  # never moves
    assert transitions.truncated.tolist() == [False] * 4 + [True, True]
    assert not transitions.terminated.any()
    assert transitions.episode_id.tolist() == [0] * 5 + [1]


def test_budget_cut_marks_the_last_episode_truncated(corridor):
    transitions = collect_rollouts(corridor, 2, lambda obs: 1, seed=0)
    assert transitions.truncated.tolist() == [False, True]


def test_collection_is_reproducible():
    config = EnvConfig(id="CartPole-v1")

    def collect():
        act = behaviour_policy(CollectConfig(), 2, None, np.random.default_rng(5))
        return to_table(collect_rollouts(config, 200, act, seed=5))

    first, second = collect(), collect()
    assert first.equals(second)


def test_table_round_trip_keeps_dtypes(corridor):
    transitions = collect_rollouts(corridor, 7, lambda obs: 1, seed=0)
    table = to_table(transitions)
    assert table["episode_id"].dtype == np.int64 and table["t"].dtype == np.int32
    assert table["obs_0"].dtype == np.float32 and table["terminated"].dtype == bool
    back = from_table(table)
    np.testing.assert_array_equal(back.next_obs, transitions.next_obs)


def test_boltzmann_is_softmax_over_q_by_temperature():
    q = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(boltzmann_probabilities(q, 1.0), np.exp(q) / np.exp(q).sum())
    assert boltzmann_probabilities(q, 0.01)[0, 2] > 0.999
    assert np.allclose(boltzmann_probabilities(q * 1000, 1.0).sum(), 1.0)


def test_single_rows_and_batches_see_the_same_current_weights():
    torch.manual_seed(0)
    network = QNetwork(3, 2, NetworkConfig(hidden_sizes=(8, 8)), np.ones(3, np.float32),
                       np.full(3, 0.5, np.float32))
    q_values = q_function(network)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(q_values(obs[:1])[0], q_values(obs)[0], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        network.head.bias.add_(1.0)  # an optimiser step changes weights in place
    np.testing.assert_allclose(q_values(obs[:1])[0], q_values(obs)[0], rtol=1e-5, atol=1e-6)
    assert q_values(obs[:1]).shape == (1, 2)


# --- Continuous actions (a 1-d Box) -------------------------------------------------------

PENDULUM = EnvConfig(id="Pendulum-v1")


def _pendulum_rollout(seed: int, steps: int = 250):
    act = behaviour_policy(CollectConfig(seed=seed), env_info(PENDULUM), None,
                           np.random.default_rng(seed))
    return collect_rollouts(PENDULUM, steps, act, seed=seed)


def test_a_uniform_continuous_rollout_is_reproducible_and_inside_the_bounds():
    first, second, other = _pendulum_rollout(3), _pendulum_rollout(3), _pendulum_rollout(4)
    assert first.action.shape == (250, 1) and first.action.dtype == np.float32
    assert to_table(first).equals(to_table(second))
    assert not np.array_equal(first.action, other.action)
    assert first.action.min() >= -2.0 and first.action.max() <= 2.0
    # uniform over [-2, 2]: both halves of the range are visited
    assert first.action.min() < -1.0 and first.action.max() > 1.0
    assert first.episode_id.tolist() == [0] * 200 + [1] * 50  # Pendulum's 200-step limit


def test_actions_outside_the_bounds_are_clipped_before_the_env_and_the_table_see_them():
    transitions = collect_rollouts(PENDULUM, 3, lambda obs: np.array([5.0]), seed=0)
    assert transitions.action[:, 0].tolist() == [2.0, 2.0, 2.0]


def test_q_based_behaviour_is_refused_on_a_continuous_task():
    info = env_info(PENDULUM)
    network = QNetwork(3, 2, NetworkConfig(hidden_sizes=(4, 4)))
    with pytest.raises(BehaviourPolicyError, match="collect.policy: boltzmann needs Q-values "
                                                   "over discrete actions"):
        behaviour_policy(CollectConfig(policy="boltzmann"), info, network,
                         np.random.default_rng(0))
    with pytest.raises(BehaviourPolicyError, match="pass the env's EnvInfo"):
        behaviour_policy(CollectConfig(), info.n_actions, None, np.random.default_rng(0))


def test_discrete_behaviour_is_unchanged_when_given_the_env_info():
    config = EnvConfig(id="CartPole-v1")

    def collect(actions):
        act = behaviour_policy(CollectConfig(), actions, None, np.random.default_rng(5))
        return to_table(collect_rollouts(config, 50, act, seed=5))

    assert collect(env_info(config)).equals(collect(2))
    assert collect(2)["action"].dtype == np.int64
