import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hindsight_rl.core.config import DQNConfig, NetworkConfig
from hindsight_rl.core.dqn import dqn_loss
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.replay import Batch
from hindsight_rl.core.stacked import StackedOptimizer, clip_member_gradients

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
                 bootstrap_reward=torch.randn(members, ROWS, generator=g),
                 bootstrap_obs=torch.randn(members, ROWS, OBS, generator=g),
                 discount=torch.full((members, ROWS), 0.9),
                 return_to_go=torch.randn(members, ROWS, generator=g) * 3,
                 rtg_valid=(torch.rand(members, ROWS, generator=g) > 0.5).float())


class _Plain(torch.nn.Module):
    """Member ``k`` of a stack as an ordinary MLP of ``nn.Linear`` layers: the reference."""

    def __init__(self, network: QNetwork) -> None:
        super().__init__()
        self.shift, self.scale = network.encoder.shift[0, 0], network.encoder.scale[0, 0]
        self.linears = torch.nn.ModuleList()
        for _, layer in network.layers():
            linear = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[2])
            with torch.no_grad():
                linear.weight.copy_(layer.weight[0].T)
                linear.bias.copy_(layer.bias[0, 0])
            self.linears.append(linear)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs - self.shift) * self.scale
        for linear in self.linears[:-1]:
            x = torch.relu(linear(x))
        return self.linears[-1](x)


def _plain_loss(network: _Plain, target: _Plain, batch: Batch, k: int,
                config: DQNConfig) -> torch.Tensor:
    """The loss of member ``k`` written the plain way (CleanRL's three lines and the
    return-to-go term)."""
    with torch.no_grad():
        best = network(batch.bootstrap_obs[k]).argmax(dim=1, keepdim=True)
        td_target = batch.bootstrap_reward[k] + batch.discount[k] * target(
            batch.bootstrap_obs[k]).gather(1, best).squeeze(1)
    q_taken = network(batch.obs[k]).gather(1, batch.action[k]).squeeze(1)
    loss = F.smooth_l1_loss(q_taken, td_target)
    shortfall = batch.return_to_go[k] - q_taken
    if config.rtg_loss == "lower_bound":
        shortfall = shortfall.clamp(min=0.0)
    valid = batch.rtg_valid[k]
    return loss + config.rtg_coef * (shortfall.pow(2) * valid).sum() / valid.sum().clamp(min=1.0)


@pytest.mark.parametrize(("rtg_coef", "rtg_loss"), [(0.0, "squared"), (0.5, "squared"),
                                                    (0.5, "lower_bound")])
def test_each_members_loss_and_gradient_are_those_of_the_member_alone(rtg_coef, rtg_loss):
    config = DQNConfig(rtg_coef=rtg_coef, rtg_loss=rtg_loss)
    members, targets = _networks([0, 1, 2]), _networks([3, 4, 5])
    online, target = QNetwork.stack(members), QNetwork.stack(targets)
    batch = _batch(3)
    loss = dqn_loss(batch, online, target, config)
    grads = torch.autograd.grad(loss.sum(), list(online.parameters()))
    for k in range(3):
        plain, plain_target = _Plain(members[k]), _Plain(targets[k])
        expected = _plain_loss(plain, plain_target, batch, k, config)
        assert loss[k].item() == pytest.approx(expected.item(), rel=1e-5)
        expected.backward()
        reference = [g for linear in plain.linears for g in (linear.weight.grad.T,
                                                               linear.bias.grad)]
        for got, want in zip(grads, reference, strict=True):
            torch.testing.assert_close(got[k].reshape(want.shape), want)


def test_stack_and_member_round_trip_and_members_are_independent_copies():
    members = _networks([0, 1])
    stack = QNetwork.stack(members)
    obs = torch.randn(2, ROWS, OBS)
    q = stack(obs)
    for k in range(2):
        torch.testing.assert_close(q[k], members[k](obs[k][None])[0])
        assert all(torch.equal(a, b) for a, b in zip(stack.member(k).state_dict().values(),
                                                     members[k].state_dict().values(),
                                                     strict=True))
    with torch.no_grad():
        stack.head.bias.add_(1.0)
    assert not torch.equal(members[1].head.bias, stack.head.bias[1:])


def test_networks_of_different_shapes_do_not_stack():
    small = QNetwork(OBS, ACTIONS, NetworkConfig(hidden_sizes=(8, 8)))
    with pytest.raises(ValueError, match="one shape"):
        QNetwork.stack([*_networks([0]), small])


@pytest.mark.parametrize("scale", [0.01, 100.0])
def test_each_member_is_clipped_as_torch_clips_one_network(scale):
    stack = QNetwork.stack(_networks([0, 1, 2]))
    torch.manual_seed(0)
    grads = [torch.randn_like(p) * scale for p in stack.parameters()]
    for g in grads:
        g[1].mul_(0.001)  # member 1 under the bound at either scale
    per_member = [[torch.nn.Parameter(torch.zeros_like(g[k])) for g in grads] for k in range(3)]
    for k, parameters in enumerate(per_member):
        for p, g in zip(parameters, grads, strict=True):
            p.grad = g[k].clone()
        torch.nn.utils.clip_grad_norm_(parameters, 10.0)
    untouched = grads[0][1].clone()
    clip_member_gradients(grads, 10.0)
    for k, parameters in enumerate(per_member):
        for p, g in zip(parameters, grads, strict=True):
            torch.testing.assert_close(g[k], p.grad)
    assert torch.equal(grads[0][1], untouched)
    total = torch.linalg.vector_norm(torch.cat([g[0].flatten() for g in grads]))
    assert (total < 10.0 + 1e-3) and (total < 9.0) == (scale < 1)


@pytest.mark.parametrize("unfrozen", [[0, 1], [1]])
def test_adam_is_torchs_adam_and_unfrozen_parts_count_their_own_steps(unfrozen):
    members = _networks([0, 1])
    stack = QNetwork.stack(members)
    optimizer = StackedOptimizer(stack, frozen=("trunk",), learning_rate=0.01,
                                 max_grad_norm=1.0)
    references = [copy.deepcopy(member) for member in members]
    torches = [torch.optim.Adam([p for name, p in n.named_parameters()
                                 if not name.startswith("trunk")], lr=0.01, fused=True)
               for n in references]
    for reference in references:
        reference.trunk.requires_grad_(False)
    obs = torch.randn(2, ROWS, OBS)
    for step in range(6):
        if step == 3:
            optimizer.unfreeze(unfrozen)
            for k in unfrozen:
                references[k].trunk.requires_grad_(True)
                torches[k].add_param_group({"params": list(references[k].trunk.parameters())})
        optimizer.step(stack(obs).pow(2).mean(dim=(1, 2)).sum())
        for k, (adam, reference) in enumerate(zip(torches, references, strict=True)):
            adam.zero_grad()
            reference(obs[k:k + 1]).pow(2).mean().backward()
            torch.nn.utils.clip_grad_norm_(
                [p for p in reference.parameters() if p.requires_grad], 1.0)
            adam.step()
    for k, reference in enumerate(references):
        for name, tensor in reference.state_dict().items():
            torch.testing.assert_close(stack.member(k).state_dict()[name], tensor)
    assert optimizer.frozen_members == [k not in unfrozen for k in range(2)]
    assert not torch.equal(stack.trunk[0].weight[1], members[1].trunk[0].weight[0])
    assert torch.equal(stack.trunk[0].weight[0], members[0].trunk[0].weight[0]) == (
        0 not in unfrozen)


def test_frozen_parts_get_no_gradient_and_do_not_move():
    stack = QNetwork.stack(_networks([0, 1]))
    trunk = copy.deepcopy(stack.trunk.state_dict())
    optimizer = StackedOptimizer(stack, frozen=("trunk",), learning_rate=0.01,
                                 max_grad_norm=10.0)
    optimizer.step(stack(torch.randn(2, ROWS, OBS)).sum())
    assert not stack.trunk[0].weight.requires_grad
    assert all(torch.equal(v, trunk[k]) for k, v in stack.trunk.state_dict().items())


def test_acting_q_values_follow_the_weights_as_they_train():
    stack = QNetwork.stack(_networks([0, 1]))
    acting = stack.numpy_forward()
    obs = torch.randn(2, 1, OBS)
    with torch.no_grad():
        for parameter in stack.parameters():
            parameter.mul_(1.5)  # an update in place, after the numpy views were taken
        expected = stack(obs)
    np.testing.assert_allclose(acting(obs.numpy()), expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(acting.q_function(1)(obs[1].numpy()), expected[1].numpy(),
                               rtol=1e-5)


def test_a_members_unfreezing_survives_a_state_round_trip():
    obs = torch.randn(2, ROWS, OBS)
    stacks = [QNetwork.stack(_networks([0, 1])) for _ in range(2)]
    optimizers = [StackedOptimizer(stack, frozen=("trunk",), learning_rate=0.01,
                                   max_grad_norm=10.0) for stack in stacks]
    optimizers[0].unfreeze([1])
    optimizers[0].step(stacks[0](obs).sum())
    stacks[1].load_state_dict(stacks[0].state_dict())
    optimizers[1].load_state(*optimizers[0].state())
    assert optimizers[1].frozen_members == [True, False]
    for stack, optimizer in zip(stacks, optimizers, strict=True):
        optimizer.step(stack(obs).pow(2).sum())
    for name, tensor in stacks[0].state_dict().items():
        assert torch.equal(stacks[1].state_dict()[name], tensor)
