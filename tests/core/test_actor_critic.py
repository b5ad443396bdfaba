import math

import numpy as np
import pytest
import torch
from torch import distributions

from hindsight_rl.core.actor_critic import (
    GaussianActor,
    TwinCritic,
    squashed_gaussian,
    transfer_into,
)
from hindsight_rl.core.config import NetworkConfig
from hindsight_rl.core.networks import QNetwork, TransferError

NETWORK = NetworkConfig(hidden_sizes=(8, 8))
LOW, HIGH = np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)


def test_the_squashed_log_prob_is_the_change_of_variables_of_the_gaussian():
    """log π(a) = log N(u) − Σ log|da/du| for a = tanh(u)·scale + bias, compared with torch's
    own transformed distribution, where tanh is not yet saturated."""
    torch.manual_seed(0)
    mean, log_std = torch.randn(1, 5, 2), torch.randn(1, 5, 2) * 0.3
    noise = torch.randn(1, 5, 2)
    scale = torch.tensor([2.0, 0.5]).view(1, 1, 2)
    bias = torch.tensor([0.0, 0.5]).view(1, 1, 2)
    action, log_prob = squashed_gaussian(mean, log_std, noise, scale, bias)
    reference = distributions.TransformedDistribution(
        distributions.Normal(mean, log_std.exp()),
        [distributions.TanhTransform(), distributions.AffineTransform(bias, scale)])
    torch.testing.assert_close(action, torch.tanh(mean + log_std.exp() * noise) * scale + bias)
    torch.testing.assert_close(log_prob, reference.log_prob(action).sum(dim=2), atol=1e-4,
                               rtol=1e-4)


def test_the_log_prob_stays_finite_where_tanh_saturates():
    """At u = 20, 1 − tanh(u)² rounds to 0 in float32: the softplus form keeps its log."""
    mean = torch.full((1, 1, 1), 20.0)
    _, log_prob = squashed_gaussian(mean, torch.zeros(1, 1, 1), torch.zeros(1, 1, 1),
                                    torch.ones(1, 1, 1), torch.zeros(1, 1, 1))
    expected = -0.5 * math.log(2 * math.pi) - 2 * (math.log(2) - 20 - math.log1p(math.exp(-40)))
    assert math.isfinite(log_prob.item())
    assert log_prob.item() == pytest.approx(expected, rel=1e-5)


def test_deterministic_actions_lie_in_the_bounds_and_members_do_not_mix():
    torch.manual_seed(1)
    actor = GaussianActor(3, LOW, HIGH, NETWORK, members=2)
    obs = torch.randn(2, 7, 3) * 100
    action = actor.deterministic(obs)
    assert action.shape == (2, 7, 2)
    assert (action >= torch.from_numpy(LOW)).all() and (action <= torch.from_numpy(HIGH)).all()
    alone = actor.member(1).deterministic(obs[1:])
    torch.testing.assert_close(action[1:], alone)


def test_the_fresh_heads_log_std_starts_at_log_std_init():
    actor = GaussianActor(3, LOW, HIGH, NETWORK, log_std_init=-3.67)
    assert (actor.head.bias[0, 0, 2:] == -3.67).all()


def test_twin_critics_of_several_seeds_are_members_of_one_network():
    torch.manual_seed(2)
    critic = TwinCritic(3, LOW, HIGH, NETWORK, seeds=3)
    obs, action = torch.randn(3, 4, 3), torch.rand(3, 4, 2)
    q = critic(obs, action)
    assert q.shape == (2, 3, 4)
    assert not torch.equal(q[0], q[1]), "the twins are initialised apart"
    assert critic.member_slices(1) == [1, 4]


def _q_network(obs_dim: int) -> QNetwork:
    torch.manual_seed(3)
    return QNetwork(obs_dim, 3, NETWORK, shift=np.full(obs_dim, 0.5, np.float32),
                    scale=np.full(obs_dim, 2.0, np.float32))


def test_a_q_networks_encoder_and_trunk_carry_into_the_actor_and_both_critics():
    source = _q_network(3)
    actor, critic = GaussianActor(3, LOW, HIGH, NETWORK), TwinCritic(3, LOW, HIGH, NETWORK)
    fresh_head = actor.head.weight.clone()
    assert transfer_into(source, actor, critic) == ["encoder", "trunk"]
    for name in ("encoder", "trunk"):
        expected = source.part(name).state_dict()
        for network in (actor, critic):
            for key, value in network.part(name).state_dict().items():
                assert all(torch.equal(value[k], expected[key][0])
                           for k in range(network.members)), (name, key)
    assert torch.equal(actor.head.weight, fresh_head), "a Q-network's head never fits"


def test_an_actor_carries_over_whole():
    torch.manual_seed(4)
    source = GaussianActor(3, LOW, HIGH, NETWORK)
    actor, critic = GaussianActor(3, LOW, HIGH, NETWORK), TwinCritic(3, LOW, HIGH, NETWORK)
    assert transfer_into(source, actor, critic) == ["encoder", "trunk", "head"]
    state = source.state_dict()
    assert all(torch.equal(value, state[key]) for key, value in actor.state_dict().items())


def test_a_different_observation_keeps_only_the_trunk_and_a_different_width_fails():
    source = _q_network(4)
    actor, critic = GaussianActor(3, LOW, HIGH, NETWORK), TwinCritic(3, LOW, HIGH, NETWORK)
    assert transfer_into(source, actor, critic) == ["trunk"]
    wide = GaussianActor(3, LOW, HIGH, NetworkConfig(hidden_sizes=(8, 16)))
    with pytest.raises(TransferError, match="use the same hidden_sizes"):
        transfer_into(source, wide, TwinCritic(3, LOW, HIGH, NetworkConfig(hidden_sizes=(8, 16))))
