"""Several Q-networks of one shape trained as one: the seeds of an arm share every update.

Each linear layer's weights are stacked along a leading member axis, and every member
network's own parameters become views of its slice, so acting, evaluation, checkpoints and
policy files keep working on ordinary :class:`QNetwork` objects while the updates run on
the stack. Why: at 128-128 an update is about 0.6 ms of arithmetic and well over a
millisecond of PyTorch per-call overhead; stacked, three seeds pay the overhead once.
A slice of a batched product equals the product of the slice bit for bit here, so a seed
trains to the same weights alone or beside others (tests/core/test_stacked.py).

The gradient is written out by hand: the network is linear layers and ReLUs, and its
backward pass is two batched products per layer, where autograd would also record a graph
on every update.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hindsight_rl.core.networks import QNetwork


class StackedQ:
    """``K`` same-shaped networks as stacked tensors: weights ``(K, out, in)``, biases
    ``(K, 1, out)``, input normalisation ``(K, 1, obs_dim)``."""

    def __init__(self, networks: Sequence[QNetwork]) -> None:
        layers = [network.linear_layers() for network in networks]
        shapes = {tuple((name, tuple(layer.weight.shape)) for name, layer in member)
                  for member in layers}
        if len(shapes) != 1:
            raise ValueError(f"networks to stack must have one shape, got {sorted(shapes)}")
        self.names = [name for name, _ in layers[0]]
        self.weights = [torch.stack([member[i][1].weight.detach() for member in layers])
                        for i in range(len(self.names))]
        self.biases = [torch.stack([member[i][1].bias.detach() for member in layers])[:, None]
                       for i in range(len(self.names))]
        self.shift = torch.stack([network.obs_shift for network in networks])[:, None]
        self.scale = torch.stack([network.obs_scale for network in networks])[:, None]
        for k, member in enumerate(layers):
            for i, (_, layer) in enumerate(member):
                layer.weight.data = self.weights[i][k]
                layer.bias.data = self.biases[i][k, 0]

    @property
    def parts(self) -> list[str]:
        """The part (encoder, trunk, head) each layer belongs to, in forward order."""
        return [name.split(".")[0] for name in self.names]

    def parameters(self) -> list[torch.Tensor]:
        return [t for pair in zip(self.weights, self.biases, strict=True) for t in pair]

    def layer_parameters(self, layers: Sequence[int]) -> list[torch.Tensor]:
        return [t for i in layers for t in (self.weights[i], self.biases[i])]

    def state(self) -> dict[str, torch.Tensor]:
        """The stacked tensors by their members' state-dict names (for checkpoints)."""
        return {f"{name}.{kind}": tensor for i, name in enumerate(self.names)
                for kind, tensor in (("weight", self.weights[i]), ("bias", self.biases[i]))}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy :meth:`state` tensors back in place, so members' views see them."""
        with torch.no_grad():
            for name, tensor in self.state().items():
                tensor.copy_(tensors[name])

    def copy_from(self, other: StackedQ) -> None:
        """The hard target update: one fused copy of every weight."""
        with torch.no_grad():
            torch._foreach_copy_(self.parameters(), other.parameters())

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Q-values ``(K, B, n_actions)`` of observations ``(K, B, obs_dim)``, and each
        layer's input (what its weight gradient needs)."""
        x = (obs - self.shift) * self.scale
        inputs = [x]
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = torch.baddbmm(bias, x, weight.mT).relu_()
            inputs.append(x)
        return torch.baddbmm(self.biases[-1], x, self.weights[-1].mT), inputs

    def backward(self, q_gradient: torch.Tensor, inputs: list[torch.Tensor],
                 trainable: Sequence[bool]) -> None:
        """Set ``.grad`` of the trainable layers' stacked tensors from ``dL/dQ``; frozen
        layers get none, and nothing is propagated below the lowest trainable layer."""
        gradient = q_gradient
        for i in reversed(range(len(self.weights))):
            if trainable[i]:
                self.weights[i].grad = torch.bmm(gradient.mT, inputs[i])
                self.biases[i].grad = gradient.sum(dim=1, keepdim=True)
            if i and any(trainable[:i]):
                gradient = torch.bmm(gradient, self.weights[i]).mul_(inputs[i] > 0)


def release(networks: Sequence[QNetwork]) -> None:
    """Give each member network its own memory again, detached from the stack."""
    for network in networks:
        for _, layer in network.linear_layers():
            layer.weight.data = layer.weight.data.clone()
            layer.bias.data = layer.bias.data.clone()


def clip_gradients(parameters: Sequence[torch.Tensor], max_norm: float) -> None:
    """Each member's gradient scaled to a global norm of at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` does for one network. Each member's norm is reduced
    on its own slices: one reduction over the stack would sum in an order that depends on
    how many members there are."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    members = len(grads[0])
    norms = torch._foreach_norm([g[k] for g in grads for k in range(members)])
    totals = torch.stack([torch.linalg.vector_norm(torch.stack(norms[k::members]))
                          for k in range(members)])
    scale = torch.clamp(max_norm / (totals + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale[:, None, None])
