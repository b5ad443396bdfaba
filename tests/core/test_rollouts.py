import numpy as np
import torch

from hindsight_rl.core.config import CollectConfig, EnvConfig, NetworkConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.rollouts import (
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
