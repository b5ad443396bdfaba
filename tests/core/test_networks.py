import copy

import numpy as np
import pytest
import torch
from torch import nn

from hindsight_rl.core.config import ConvConfig, NetworkConfig
from hindsight_rl.core.errors import HindsightRLError
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


def _cnn(conv: dict, image_shape=(7, 7, 3), members: int = 1, seed: int = 0,
         vectors: int = 0) -> QNetwork:
    """A cnn Q-network with random weights and normalisation; ``vectors`` entries follow
    the pixels (an agent's position, a goal)."""
    torch.manual_seed(seed)
    config = NetworkConfig(hidden_sizes=(32, 32), encoder="cnn", conv=ConvConfig(**conv))
    width = int(np.prod(image_shape)) + vectors
    rng = np.random.default_rng(seed)
    return QNetwork(width, 5, config, rng.normal(size=width).astype(np.float32),
                    rng.uniform(0.1, 1, size=width).astype(np.float32), members=members,
                    image_shape=image_shape)


CONV_SHAPES = [({"channels": (16, 32, 64), "kernels": (2, 2, 2), "strides": (1, 1, 1)},
                (7, 7, 3)),
               ({"channels": (8, 4), "kernels": (3, 2), "strides": (2, 1)}, (9, 11, 2)),
               ({"channels": (6,), "kernels": (4,), "strides": (3,)}, (10, 10, 1))]


@pytest.mark.parametrize("vectors", [0, 4])
@pytest.mark.parametrize(("conv", "image_shape"), CONV_SHAPES)
def test_the_numpy_convolutions_compute_the_torch_forward_pass(conv, image_shape, vectors):
    network = _cnn(conv, image_shape, members=3, vectors=vectors)
    pixels = int(np.prod(image_shape))
    obs = torch.rand(3, 6, pixels + vectors) * 10
    with torch.no_grad():
        expected = network(obs).numpy()
    assert np.allclose(network.numpy_forward()(obs.numpy()), expected, atol=1e-5)
    reference = nn.functional.conv2d  # one member through torch's own ungrouped convolution
    member = network.member(1)
    x = ((obs[1:2] - member.encoder.shift) * member.encoder.scale)[0]
    image = x[:, :pixels].reshape(6, *image_shape).permute(0, 3, 1, 2)
    for layer in member.encoder.convs:
        image = reference(image, layer.weight[0], layer.bias[0], stride=layer.stride).relu()
    joined = torch.cat([image.flatten(1), x[:, pixels:]], dim=1)
    features = (joined @ member.encoder.linear.weight[0]
                + member.encoder.linear.bias[0]).relu()
    with torch.no_grad():
        assert torch.allclose(member.trunk(features[None])[0],
                              member.trunk(member.encoder(obs[1:2]))[0], atol=1e-5)


def test_conv_members_never_mix():
    network = _cnn(CONV_SHAPES[0][0], members=2)
    obs = torch.rand(2, 4, 147) * 10
    changed = obs.clone()
    changed[1] += 1.0
    with torch.no_grad():
        before, after = network(obs), network(changed)
    assert torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])
    network(obs)[0].sum().backward()
    assert all(p.grad[1].abs().sum() == 0 for p in network.parameters()), \
        "member 0's loss reaches member 1's weights"


def test_the_trunk_carries_between_an_mlp_and_a_cnn_encoder_and_only_the_trunk():
    config = NetworkConfig(hidden_sizes=(32, 32))
    torch.manual_seed(1)
    mlp = QNetwork(147, 5, config)
    cnn = _cnn(CONV_SHAPES[0][0])
    encoder_before = copy.deepcopy(cnn.encoder.state_dict())
    assert transfer_parts(mlp, cnn) == ["trunk", "head"]
    assert all(torch.equal(v, mlp.trunk.state_dict()[k]) for k, v in cnn.trunk.state_dict().items())
    assert all(torch.equal(v, encoder_before[k]) for k, v in cnn.encoder.state_dict().items())
    other = _cnn(CONV_SHAPES[0][0], seed=5)
    assert transfer_parts(other, cnn) == ["encoder", "trunk", "head"]
    assert all(torch.equal(v, other.encoder.state_dict()[k])
               for k, v in cnn.encoder.state_dict().items())


def test_the_entries_after_the_pixels_reach_the_features_and_the_encoder_transfers_only_with_them():
    network = _cnn(CONV_SHAPES[0][0], vectors=2)
    obs = torch.rand(1, 4, 149) * 10
    moved = obs.clone()
    moved[..., 147:] += 1.0  # the same view, another cell
    with torch.no_grad():
        assert not torch.allclose(network(obs), network(moved))
    assert transfer_parts(_cnn(CONV_SHAPES[0][0], seed=1), network) == ["trunk", "head"]
    assert transfer_parts(_cnn(CONV_SHAPES[0][0], seed=1, vectors=2), network) == [
        "encoder", "trunk", "head"]


def test_a_cnn_encoder_refuses_a_vector_observation_and_too_small_an_image():
    with pytest.raises(HindsightRLError, match="cnn reads image observations"):
        QNetwork(4, 2, NetworkConfig(encoder="cnn"))
    with pytest.raises(HindsightRLError, match="too small for kernels"):
        _cnn({"channels": (4, 4), "kernels": (4, 4), "strides": (1, 1)}, (5, 5, 1))


def test_the_trunk_carries_from_an_mlp_into_a_gru_network_and_only_what_fits():
    torch.manual_seed(1)
    mlp = QNetwork(4, 2, NetworkConfig(hidden_sizes=(16, 16)))
    torch.manual_seed(2)
    gru = QNetwork(2, 2, NetworkConfig(hidden_sizes=(16, 16), encoder="gru"))
    encoder_before = copy.deepcopy(gru.encoder.state_dict())
    assert transfer_parts(mlp, gru) == ["trunk", "head"]
    for part in ("trunk", "head"):
        mine, theirs = gru.part(part).state_dict(), mlp.part(part).state_dict()
        assert all(torch.equal(value, theirs[key]) for key, value in mine.items())
    assert all(torch.equal(value, encoder_before[key])
               for key, value in gru.encoder.state_dict().items())
    with pytest.raises(HindsightRLError, match="reads observation sequences"):
        gru(torch.zeros(1, 3, 2))
