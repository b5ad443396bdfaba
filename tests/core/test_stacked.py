import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hindsight_rl.core.config import DQNConfig, NetworkConfig
from hindsight_rl.core.dqn import dqn_loss
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.replay import Batch
from hindsight_rl.core.stacked import StackedAdam, StackedQ, release

OBS, ACTIONS, ROWS = 3, 2, 16


def _networks(seeds) -> list[QNetwork]:
    networks = []
    for seed in seeds:
        torch.manual_seed(seed)
        networks.append(QNetwork(OBS, ACTIONS, NetworkConfig(hidden_sizes=(16, 8))))
    return networks


def _batch(members: int) -> Batch:
    g = torch.Generator().manual_seed(7)
    return Batch(obs=torch.randn(members, ROWS, OBS, generator=g),
                 action=torch.randint(0, ACTIONS, (members, ROWS, 1), generator=g),
                 reward=torch.randn(members, ROWS, generator=g),
                 next_obs=torch.randn(members, ROWS, OBS, generator=g),
                 discount=torch.full((members, ROWS), 0.9),
                 return_to_go=torch.randn(members, ROWS, generator=g) * 3,
                 rtg_valid=(torch.rand(members, ROWS, generator=g) > 0.5).float())


def _autograd_loss(network: QNetwork, target: QNetwork, batch: Batch, k: int,
                   config: DQNConfig) -> torch.Tensor:
    """The loss of member ``k`` written the plain way, for autograd to differentiate."""
    with torch.no_grad():
        best = network(batch.next_obs[k]).argmax(dim=1, keepdim=True)
        td_target = batch.reward[k] + batch.discount[k] * target(batch.next_obs[k]).gather(
            1, best).squeeze(1)
    q_taken = network(batch.obs[k]).gather(1, batch.action[k]).squeeze(1)
    loss = F.smooth_l1_loss(q_taken, td_target)
    shortfall = batch.return_to_go[k] - q_taken
    if config.rtg_loss == "lower_bound":
        shortfall = shortfall.clamp(min=0.0)
    valid = batch.rtg_valid[k]
    return loss + config.rtg_coef * (shortfall.pow(2) * valid).sum() / valid.sum().clamp(min=1.0)


@pytest.mark.parametrize(("rtg_coef", "rtg_loss", "frozen"), [
    (0.0, "squared", ()), (0.5, "squared", ("trunk",)), (0.5, "lower_bound", ("encoder",))])
def test_hand_written_gradient_is_autograds(rtg_coef, rtg_loss, frozen):
    config = DQNConfig(rtg_coef=rtg_coef, rtg_loss=rtg_loss)
    networks, targets = _networks([0, 1, 2]), _networks([3, 4, 5])
    references = [copy.deepcopy(n) for n in networks]
    online, target = StackedQ(networks, frozen), StackedQ(targets)
    batch = _batch(3)
    loss, q_gradient, inputs = dqn_loss(batch, online, target, config)
    online.backward(q_gradient, inputs)
    for k, (reference, target_k) in enumerate(zip(references, targets, strict=True)):
        expected = _autograd_loss(reference, target_k, batch, k, config)
        expected.backward()
        assert loss[k].item() == pytest.approx(expected.item(), rel=1e-5)
        for i, (name, layer) in enumerate(reference.linear_layers()):
            if name.split(".")[0] in frozen:
                assert not online.weight_grads[i].any() and not online.bias_grads[i].any()
                continue
            torch.testing.assert_close(online.weight_grads[i][k], layer.weight.grad)
            torch.testing.assert_close(online.bias_grads[i][k, 0], layer.bias.grad)


def test_members_share_memory_with_the_stack_until_released():
    networks = _networks([0, 1])
    stack = StackedQ(networks)
    obs = torch.randn(2, ROWS, OBS)
    q, _ = stack.forward(obs)
    for k in range(2):
        torch.testing.assert_close(q[k], networks[k](obs[k]))
    stack.biases[-1][1].add_(1.0)
    assert torch.equal(networks[1].head.bias, stack.biases[-1][1, 0])
    release(networks)
    stack.biases[-1][1].add_(1.0)
    assert not torch.equal(networks[1].head.bias, stack.biases[-1][1, 0])


def test_networks_of_different_shapes_do_not_stack():
    small = QNetwork(OBS, ACTIONS, NetworkConfig(hidden_sizes=(8, 8)))
    with pytest.raises(ValueError, match="one shape"):
        StackedQ([*_networks([0]), small])


@pytest.mark.parametrize("scale", [0.01, 100.0])
def test_each_member_is_clipped_as_torch_clips_one_network(scale):
    stack = StackedQ(_networks([0, 1, 2]))
    torch.manual_seed(0)
    stack.grad.copy_(torch.randn_like(stack.grad) * scale)
    grads = [g for pair in zip(stack.weight_grads, stack.bias_grads, strict=True) for g in pair]
    for g in grads:
        g[1].mul_(0.001)  # member 1 under the bound at either scale
    per_member = [[torch.nn.Parameter(torch.zeros_like(g[k])) for g in grads] for k in range(3)]
    for k, parameters in enumerate(per_member):
        for p, g in zip(parameters, grads, strict=True):
            p.grad = g[k].clone()
        torch.nn.utils.clip_grad_norm_(parameters, 10.0)
    untouched = grads[0][1].clone()
    stack.clip_gradients(10.0)
    for k, parameters in enumerate(per_member):
        for p, g in zip(parameters, grads, strict=True):
            torch.testing.assert_close(g[k], p.grad)
    assert torch.equal(grads[0][1], untouched)
    total = torch.linalg.vector_norm(torch.cat([g[0].flatten() for g in grads]))
    assert (total < 10.0 + 1e-3) and (total < 9.0) == (scale < 1)


def test_adam_is_torchs_fused_adam_bit_for_bit_and_unfrozen_layers_count_their_own_steps():
    networks = _networks([0, 1])
    references = [copy.deepcopy(n) for n in networks]
    stack = StackedQ(networks, frozen=("trunk",))
    adam = StackedAdam(stack, learning_rate=0.01)
    torches = [torch.optim.Adam([p for name, p in n.named_parameters()
                                 if not name.startswith("trunk")], lr=0.01, fused=True)
               for n in references]
    torch.manual_seed(0)
    for step in range(6):
        if step == 3:
            stack.unfreeze()
            adam.add_frozen_span()
            for optimiser, reference in zip(torches, references, strict=True):
                optimiser.add_param_group({"params": list(reference.trunk.parameters())})
        stack.grad.copy_(torch.randn_like(stack.grad))
        for i, (name, _) in enumerate(references[0].linear_layers()):
            if not stack.trainable[i]:
                stack.weight_grads[i].zero_()
                stack.bias_grads[i].zero_()
            for k, reference in enumerate(references):
                layer = dict(reference.linear_layers())[name]
                layer.weight.grad = stack.weight_grads[i][k].clone()
                layer.bias.grad = stack.bias_grads[i][k, 0].clone()
        adam.step()
        for optimiser in torches:
            optimiser.step()
    for network, reference in zip(networks, references, strict=True):
        for name, tensor in reference.state_dict().items():
            assert torch.equal(network.state_dict()[name], tensor), name


def test_target_update_copies_current_weights_without_sharing_them():
    online = StackedQ(_networks([0, 1]), frozen=("encoder",))  # another order in memory
    target = StackedQ(_networks([2, 3]))
    online.biases[-1].add_(1.0)
    target.copy_from(online)
    for mine, theirs in ((online.weights, target.weights), (online.biases, target.biases)):
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))
    online.biases[-1].add_(1.0)
    assert not torch.equal(online.biases[-1], target.biases[-1])


def test_acting_q_values_follow_the_weights_as_they_train():
    stack = StackedQ(_networks([0, 1]))
    obs = torch.randn(2, OBS)
    stack.flat.mul_(1.5)  # an update in place, after the numpy views were taken
    expected, _ = stack.forward(obs[:, None, :])
    np.testing.assert_allclose(stack.q_values(obs.numpy()), expected[:, 0].numpy(), rtol=1e-5)
