import copy

import numpy as np
import torch

from hindsight_rl.core.config import NetworkConfig
from hindsight_rl.core.networks import QNetwork, transfer_parts


def _network(seed: int = 0) -> QNetwork:
    torch.manual_seed(seed)
    return QNetwork(3, 2, NetworkConfig(hidden_sizes=(16, 8, 4)),
                    shift=np.array([1.0, -1.0, 0.5], np.float32),
                    scale=np.array([0.5, 2.0, 1.0], np.float32))


def _through_the_parts(network: QNetwork, obs: torch.Tensor) -> torch.Tensor:
    return network.head(network.trunk(network.encoder(obs)))


def test_forward_is_the_composition_of_its_named_parts_bit_for_bit():
    network, obs = _network(), torch.randn(1, 32, 3)
    assert torch.equal(network(obs), _through_the_parts(network, obs))


def test_each_member_is_initialised_as_nn_linear_initialises_one_layer():
    torch.manual_seed(5)
    network = QNetwork(3, 2, NetworkConfig(hidden_sizes=(16, 8)))
    torch.manual_seed(5)
    linears = [torch.nn.Linear(3, 16), torch.nn.Linear(16, 8), torch.nn.Linear(8, 2)]
    for (_, layer), linear in zip(network.layers(), linears, strict=True):
        assert torch.equal(layer.weight[0], linear.weight.detach().T)
        assert torch.equal(layer.bias[0, 0], linear.bias.detach())


def test_forward_follows_weights_loaded_or_copied_into_the_parts():
    network, donor, obs = _network(0), _network(1), torch.randn(1, 8, 3)
    transfer_parts(donor, network)
    assert torch.equal(network(obs), donor(obs))
    copied = copy.deepcopy(network)
    with torch.no_grad():
        copied.head.bias.add_(1.0)
    assert torch.equal(copied(obs), _through_the_parts(copied, obs))
    assert torch.equal(network(obs), donor(obs))
