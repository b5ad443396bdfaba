"""Several Q-networks of one shape trained as one: the seeds of an arm share every update.

Each linear layer's weights are stacked along a leading member axis, and every member
network's own parameters become views of its slice, so acting, evaluation, checkpoints and
policy files keep working on ordinary :class:`QNetwork` objects while the updates run on
the stack. Why: at 128-128 and batch 128 one seed's update is about 0.2 ms of arithmetic and
nearly twice that of PyTorch per-call overhead; stacked, the seeds of an arm pay the overhead
once.

Every stacked tensor is a view of one flat buffer (and every gradient of another) laid out
member by member, so each member's parameters are one contiguous span: Adam is one fused
kernel call over the members' spans and a member's gradient norm one reduction. Each
member's arithmetic is the same whatever else shares the stack — a slice of a batched
product is the product of the slice, Adam and the norm see the member's span alone — so a
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

    Member ``k``'s parameters are row ``k`` of :attr:`members` (a ``(K, member_size)``
    view of the flat buffer), its frozen layers last, so its trainable layers are the first
    :attr:`trainable_size` entries of the row and unfreezing adds the rest.
    """

    def __init__(self, networks: Sequence[QNetwork], frozen: Sequence[str] = ()) -> None:
        members = [network.linear_layers() for network in networks]
        signatures = {tuple((name, tuple(layer.weight.shape)) for name, layer in member)
                      for member in members}
        if len(signatures) != 1:
            raise ValueError(f"networks to stack must have one shape, got {sorted(signatures)}")
        self.names = [name for name, _ in members[0]]
        self.trainable = [name.split(".")[0] not in frozen for name in self.names]
        # Tensor t is layer t // 2's weight (even t) or bias (odd t), shapes of one member.
        shapes = [shape for _, layer in members[0]
                  for shape in (tuple(layer.weight.shape), (1, layer.weight.shape[0]))]
        order = sorted(range(len(shapes)), key=lambda t: not self.trainable[t // 2])
        starts, end = {}, 0
        self.trainable_size = 0
        """Parameters of a member's trainable layers: the head of its row."""
        for t in order:
            starts[t] = end
            end += math.prod(shapes[t])
            if self.trainable[t // 2]:
                self.trainable_size = end
        self.member_size = end
        count = len(networks)
        self.flat, self.grad = torch.zeros(count * end), torch.zeros(count * end)
        self.members, self.member_grads = self.flat.view(count, end), self.grad.view(count, end)
        tensors, grads = ([rows[:, starts[t]:starts[t] + math.prod(shape)].view(count, *shape)
                           for t, shape in enumerate(shapes)]
                          for rows in (self.members, self.member_grads))
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
                _weight_gradient(gradient, inputs[i], self.weight_grads[i])
                self.bias_grads[i].copy_(gradient.sum(dim=1, keepdim=True))
            if i and any(self.trainable[:i]):
                # ReLU's backward as autograd does it: one pass, where multiplying by
                # ``inputs[i] > 0`` makes a mask and converts it (six times slower here).
                gradient = torch.ops.aten.threshold_backward(
                    torch.bmm(gradient, self.weights[i]), inputs[i], 0.0)

    def clip_gradients(self, max_norm: float) -> None:
        """Each member's gradient scaled to a norm of at most ``max_norm``, as
        ``torch.nn.utils.clip_grad_norm_`` does for one network (the norm of all its
        gradients), each member's taken over its own span alone. Most updates need no
        scaling and skip it."""
        spans = self.member_grads[:, :self.trainable_size]
        norms = torch.stack(torch._foreach_norm(list(spans))).tolist()
        for span, norm in zip(spans, norms, strict=True):
            scale = max_norm / (norm + 1e-6)
            if scale < 1.0:
                span.mul_(scale)

    def unfreeze(self) -> None:
        self.trainable = [True] * len(self.trainable)
        self.trainable_size = self.member_size


class StackedAdam:
    """Adam as ``torch.optim.Adam(fused=True)`` computes it, on spans of each member's row
    of a stack: the trainable layers from the start, then the frozen ones with a step count
    of their own once they start training, as a new param group would. Every member's span
    is its own tensor to the fused kernel, so its arithmetic does not depend on the others."""

    def __init__(self, stack: StackedQ, learning_rate: float, betas: tuple[float, float] =
                 (0.9, 0.999), eps: float = 1e-8) -> None:
        self.stack, self.learning_rate, self.betas, self.eps = stack, learning_rate, betas, eps
        self.exp_avg = torch.zeros_like(stack.members)
        self.exp_avg_sq = torch.zeros_like(stack.members)
        self.groups: list[list[int]] = []
        """``[start, end, step]`` of each span of the members' rows it updates."""
        self._spans: list[list[list[torch.Tensor]]] = []
        """Each group's per-member views: parameters, gradients, both moments."""
        if stack.trainable_size:
            self._add_group(0, stack.trainable_size, 0)

    def add_frozen_span(self) -> None:
        """Start training the frozen layers (the rest of each member's row)."""
        start = self.groups[-1][1] if self.groups else 0
        if start < self.stack.member_size:
            self._add_group(start, self.stack.member_size, 0)

    def _add_group(self, start: int, end: int, step: int) -> None:
        self.groups.append([start, end, step])
        self._spans.append([list(rows[:, start:end]) for rows in (
            self.stack.members, self.stack.member_grads, self.exp_avg, self.exp_avg_sq)])

    def step(self) -> None:
        beta1, beta2 = self.betas
        for group, spans in zip(self.groups, self._spans, strict=True):
            group[2] += 1
            steps = [torch.tensor(float(group[2]))] * len(spans[0])
            torch._fused_adam_(*spans, [], steps, lr=self.learning_rate, beta1=beta1,
                               beta2=beta2, weight_decay=0.0, eps=self.eps, amsgrad=False,
                               maximize=False)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return ({"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq},
                {"groups": self.groups})

    def load_state(self, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
        self.exp_avg.copy_(tensors["exp_avg"])
        self.exp_avg_sq.copy_(tensors["exp_avg_sq"])
        self.groups, self._spans = [], []
        for start, end, step in document["groups"]:
            self._add_group(start, end, step)


def _weight_gradient(gradient: torch.Tensor, inputs: torch.Tensor, out: torch.Tensor) -> None:
    """``out = gradientᵀ · inputs``, a layer's weight gradient, computed into a fresh tensor
    and copied: written straight into ``out`` (strided member by member) torch takes another
    path for a stack of several than for one, with other rounding. A product only a few
    columns wide (the encoder's: ``obs_dim`` of them) is three times slower here than its
    transpose, so that one is computed transposed."""
    if inputs.shape[2] < gradient.shape[2]:
        out.copy_(torch.bmm(inputs.mT, gradient).mT)
    else:
        out.copy_(torch.bmm(gradient.mT, inputs))


def release(networks: Sequence[QNetwork]) -> None:
    """Give each member network its own memory again, detached from the stack."""
    for network in networks:
        for _, layer in network.linear_layers():
            layer.weight.data = layer.weight.data.clone()
            layer.bias.data = layer.bias.data.clone()
