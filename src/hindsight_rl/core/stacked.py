"""Several Q-networks of one shape trained as one: the seeds of an arm share every update.

Each linear layer's weights are stacked along a leading member axis, and every member
network's own parameters become views of its slice, so acting, evaluation, checkpoints and
policy files keep working on ordinary :class:`QNetwork` objects while the updates run on
the stack. Why: at 128-128 an update is about 0.6 ms of arithmetic and over a millisecond
of PyTorch per-call overhead; stacked, the seeds of an arm pay the overhead once.

Every stacked tensor is a view of one flat buffer (and every gradient of another), so Adam
is a handful of elementwise operations over one tensor instead of a loop over six. Each
member's arithmetic is the same whatever else shares the stack — a slice of a batched
product is the product of the slice, Adam is elementwise, norms are taken per member — so a
seed trains to the same weights alone or beside others (tests/core/test_dqn.py).

The gradient is written out by hand: the network is linear layers and ReLUs, and its
backward pass is two batched products per layer, where autograd would also record a graph
on every update (tests/core/test_stacked.py checks it against autograd).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hindsight_rl.core.networks import QNetwork


class StackedQ:
    """``K`` same-shaped networks as stacked tensors: weights ``(K, out, in)``, biases
    ``(K, 1, out)``, input normalisation ``(K, 1, obs_dim)``.

    Layers of ``frozen`` parts come last in the flat buffer, so the trainable ones are one
    span of it (:attr:`trainable_span`) and unfreezing adds the other.
    """

    def __init__(self, networks: Sequence[QNetwork], frozen: Sequence[str] = ()) -> None:
        members = [network.linear_layers() for network in networks]
        signatures = {tuple((name, tuple(layer.weight.shape)) for name, layer in member)
                      for member in members}
        if len(signatures) != 1:
            raise ValueError(f"networks to stack must have one shape, got {sorted(signatures)}")
        self.names = [name for name, _ in members[0]]
        self.trainable = [name.split(".")[0] not in frozen for name in self.names]
        # Tensor t is layer t // 2's weight (even t) or bias (odd t).
        shapes = [shape for _, layer in members[0] for shape in (
            (len(networks), *layer.weight.shape), (len(networks), 1, layer.weight.shape[0]))]
        order = sorted(range(len(shapes)), key=lambda t: not self.trainable[t // 2])
        starts, end = {}, 0
        self.trainable_span = 0
        """Where the trainable layers' span of the flat buffer ends (the frozen ones' starts)."""
        for t in order:
            starts[t] = end
            end += math.prod(shapes[t])
            if self.trainable[t // 2]:
                self.trainable_span = end
        self.flat, self.grad = torch.zeros(end), torch.zeros(end)
        tensors, grads = ([buffer[starts[t]:starts[t] + math.prod(shape)].view(shape)
                           for t, shape in enumerate(shapes)] for buffer in (self.flat, self.grad))
        self.weights, self.biases = tensors[0::2], tensors[1::2]
        self.weight_grads, self.bias_grads = grads[0::2], grads[1::2]
        for j, member in enumerate(members):
            for i, (_, layer) in enumerate(member):
                self.weights[i][j].copy_(layer.weight.detach())
                self.biases[i][j, 0].copy_(layer.bias.detach())
                layer.weight.data = self.weights[i][j]
                layer.bias.data = self.biases[i][j, 0]
        self.shift = torch.stack([network.obs_shift for network in networks])[:, None]
        self.scale = torch.stack([network.obs_scale for network in networks])[:, None]
        self._numpy = [(w.numpy().swapaxes(1, 2), b.numpy())
                       for w, b in zip(self.weights, self.biases, strict=True)]
        self._numpy_shift, self._numpy_scale = self.shift.numpy(), self.scale.numpy()

    @property
    def parts(self) -> list[str]:
        """The part (encoder, trunk, head) each layer belongs to, in forward order."""
        return [name.split(".")[0] for name in self.names]

    def state(self) -> dict[str, torch.Tensor]:
        """The stacked tensors by their members' state-dict names (for checkpoints)."""
        return {f"{name}.{kind}": tensor for i, name in enumerate(self.names)
                for kind, tensor in (("weight", self.weights[i]), ("bias", self.biases[i]))}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy :meth:`state` tensors back in place, so members' views see them."""
        for name, tensor in self.state().items():
            tensor.copy_(tensors[name])

    def copy_from(self, other: StackedQ) -> None:
        """The hard target update: every weight copied in one call, layer by layer (the two
        stacks' flat buffers may order layers differently)."""
        torch._foreach_copy_([*self.weights, *self.biases], [*other.weights, *other.biases])

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Q-values ``(K, B, n_actions)`` of observations ``(K, B, obs_dim)``, and each
        layer's input (what its weight gradient needs)."""
        x = (obs - self.shift) * self.scale
        inputs = [x]
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = torch.baddbmm(bias, x, weight.mT).relu_()
            inputs.append(x)
        return torch.baddbmm(self.biases[-1], x, self.weights[-1].mT), inputs

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``(K, n_actions)`` of one observation per member ``(K, obs_dim)``, in
        numpy on views of the current weights: acting asks for one row per member every env
        step, where torch's per-call overhead would be several times the arithmetic."""
        x = (obs[:, None, :].astype(np.float32) - self._numpy_shift) * self._numpy_scale
        for i, (weight, bias) in enumerate(self._numpy):
            x = np.matmul(x, weight) + bias
            if i < len(self._numpy) - 1:
                np.maximum(x, 0.0, out=x)
        return x[:, 0]

    def backward(self, q_gradient: torch.Tensor, inputs: list[torch.Tensor]) -> None:
        """Write the trainable layers' gradients from ``dL/dQ``; frozen layers' stay zero,
        and nothing is propagated below the lowest trainable layer."""
        gradient = q_gradient
        for i in reversed(range(len(self.weights))):
            if self.trainable[i]:
                torch.bmm(gradient.mT, inputs[i], out=self.weight_grads[i])
                torch.sum(gradient, dim=1, keepdim=True, out=self.bias_grads[i])
            if i and any(self.trainable[:i]):
                gradient = torch.bmm(gradient, self.weights[i]).mul_(inputs[i] > 0)

    def clip_gradients(self, max_norm: float) -> None:
        """Each member's gradient scaled to a global norm of at most ``max_norm``, as
        ``torch.nn.utils.clip_grad_norm_`` does for one network. Each member's norm is
        reduced over its own slices: one reduction over the stack would sum in an order
        that depends on how many members there are."""
        grads = [g for i, on in enumerate(self.trainable) if on
                 for g in (self.weight_grads[i], self.bias_grads[i])]
        members = len(self.shift)
        norms = torch._foreach_norm([g[k] for g in grads for k in range(members)])
        totals = torch.stack([torch.linalg.vector_norm(torch.stack(norms[k::members]))
                              for k in range(members)])
        scale = torch.clamp(max_norm / (totals + 1e-6), max=1.0)[:, None, None]
        for g in grads:
            g.mul_(scale)

    def unfreeze(self) -> None:
        self.trainable = [True] * len(self.trainable)


class StackedAdam:
    """Adam (``torch.optim.Adam``'s arithmetic, operation for operation) on spans of a
    stack's flat buffer: one span for the layers trainable from the start, a second one with
    its own step count once frozen layers start training, as a new param group would."""

    def __init__(self, stack: StackedQ, learning_rate: float, betas: tuple[float, float] =
                 (0.9, 0.999), eps: float = 1e-8) -> None:
        self.stack, self.learning_rate, self.betas, self.eps = stack, learning_rate, betas, eps
        self.exp_avg = torch.zeros_like(stack.flat)
        self.exp_avg_sq = torch.zeros_like(stack.flat)
        self.groups: list[list[int]] = []
        """``[start, end, step]`` of each span of the flat buffer it updates."""
        if stack.trainable_span:
            self.groups.append([0, stack.trainable_span, 0])

    def add_frozen_span(self) -> None:
        """Start training the frozen layers (the rest of the flat buffer)."""
        if self.stack.trainable_span < len(self.stack.flat):
            self.groups.append([self.stack.trainable_span, len(self.stack.flat), 0])

    def step(self) -> None:
        beta1, beta2 = self.betas
        for group in self.groups:
            start, end = group[0], group[1]
            group[2] += 1
            step = group[2]
            param, grad = self.stack.flat[start:end], self.stack.grad[start:end]
            exp_avg, exp_avg_sq = self.exp_avg[start:end], self.exp_avg_sq[start:end]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = self.learning_rate / (1 - beta1 ** step)
            denominator = exp_avg_sq.sqrt().div_((1 - beta2 ** step) ** 0.5).add_(self.eps)
            param.addcdiv_(exp_avg, denominator, value=-step_size)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return ({"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq},
                {"groups": self.groups})

    def load_state(self, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
        self.exp_avg.copy_(tensors["exp_avg"])
        self.exp_avg_sq.copy_(tensors["exp_avg_sq"])
        self.groups = [list(group) for group in document["groups"]]


def release(networks: Sequence[QNetwork]) -> None:
    """Give each member network its own memory again, detached from the stack."""
    for network in networks:
        for _, layer in network.linear_layers():
            layer.weight.data = layer.weight.data.clone()
            layer.bias.data = layer.bias.data.clone()
