"""A GRU for partially observed tasks (CartPole with its velocities hidden), its weights
stacked along a leading ``members`` axis like every network here (see
:class:`~hindsight_rl.core.networks.StackedLinear`): the training seeds of an arm run as one
batched product per step, and members never mix.

The arithmetic is exactly ``torch.nn.GRU``'s (gates in its ``r, z, n`` order)::

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h

so that a member's weights mean the same in ``nn.GRUCell``, a policy file and
:func:`numpy_gru_step`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn


class GRUWeights(NamedTuple):
    """One GRU's weights in ``nn.GRUCell``'s layout and names (``(3·hidden, in)``, gates
    ``r, z, n``), so that ``cell.load_state_dict(weights._asdict())`` loads them."""

    weight_ih: torch.Tensor  # (3 hidden, in)
    weight_hh: torch.Tensor  # (3 hidden, hidden)
    bias_ih: torch.Tensor  # (3 hidden,)
    bias_hh: torch.Tensor  # (3 hidden,)


class StackedGRU(nn.Module):
    """``members`` GRU cells of one shape. Weights are stored ``(members, in, 3·hidden)`` and
    ``(members, hidden, 3·hidden)``, so that each step is one batched product per weight;
    each member's are initialised as ``nn.GRUCell`` initialises its own (uniform
    ``±1/√hidden``, the same random draws)."""

    def __init__(self, members: int, in_features: int, hidden: int) -> None:
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(members, in_features, 3 * hidden))
        self.weight_hh = nn.Parameter(torch.empty(members, hidden, 3 * hidden))
        self.bias_ih = nn.Parameter(torch.empty(members, 1, 3 * hidden))
        self.bias_hh = nn.Parameter(torch.empty(members, 1, 3 * hidden))
        bound = 1 / math.sqrt(hidden)
        with torch.no_grad():
            for k in range(members):  # nn.GRUCell's order: weight_ih, weight_hh, biases
                for stacked in (self.weight_ih, self.weight_hh):
                    weight = torch.empty(3 * hidden, stacked.shape[1]).uniform_(-bound, bound)
                    stacked[k].copy_(weight.T)
                for stacked in (self.bias_ih, self.bias_hh):
                    nn.init.uniform_(stacked[k], -bound, bound)

    @property
    def members(self) -> int:
        return int(self.weight_ih.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight_ih.shape[1])

    @property
    def hidden(self) -> int:
        return int(self.weight_hh.shape[1])

    def initial_hidden(self, batch: int) -> torch.Tensor:
        """The zero state ``(members, batch, hidden)`` an episode starts from."""
        return self.weight_hh.new_zeros(self.members, batch, self.hidden)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None,
                reset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run over a sequence ``x`` ``(members, batch, T, in)`` from ``h0`` ``(members,
        batch, hidden)`` (zero if None). ``reset`` ``(batch, T)``, or ``(members, batch, T)``
        where members' episodes start at different steps (acting), zeros the hidden state
        before the steps where it is True. Returns every step's hidden state ``(members,
        batch, T, hidden)`` and the last one ``(members, batch, hidden)``."""
        members, batch, steps, _ = x.shape
        h = self.initial_hidden(batch) if h0 is None else h0
        # The input's share of the gates needs no recurrence: one product for every step.
        gates_x = torch.baddbmm(self.bias_ih, x.reshape(members, batch * steps, -1),
                                self.weight_ih).view(members, batch, steps, -1)
        keep = (x.new_ones(1, batch, steps) if reset is None
                else (~reset.bool()).to(x.dtype))
        keep = keep.expand(members, batch, steps).contiguous()
        if steps == 0:
            return x.new_zeros(members, batch, 0, self.hidden), h
        outputs = GRUSequence.apply(gates_x, h, keep, self.weight_hh, self.bias_hh)
        return outputs, outputs[:, :, -1]

    def member(self, k: int) -> GRUWeights:
        """Member ``k``'s weights, copied, in ``nn.GRUCell``'s layout."""
        return GRUWeights(weight_ih=self.weight_ih[k].detach().T.clone(),
                          weight_hh=self.weight_hh[k].detach().T.clone(),
                          bias_ih=self.bias_ih[k, 0].detach().clone(),
                          bias_hh=self.bias_hh[k, 0].detach().clone())

    def load_member(self, k: int, weights: GRUWeights) -> None:
        """Set member ``k``'s weights from ``nn.GRUCell``'s layout (inverse of :meth:`member`)."""
        with torch.no_grad():
            self.weight_ih[k].copy_(torch.as_tensor(weights.weight_ih).T)
            self.weight_hh[k].copy_(torch.as_tensor(weights.weight_hh).T)
            self.bias_ih[k, 0].copy_(torch.as_tensor(weights.bias_ih))
            self.bias_hh[k, 0].copy_(torch.as_tensor(weights.bias_hh))


class GRUSequence(torch.autograd.Function):
    """The recurrent half of a stacked GRU over a sequence, with backpropagation through
    time written out: autograd would record a dozen small operations per step and replay
    them one by one, where this records one node, runs each step in member-major buffers
    with few operations, and computes the gates' derivative factors for every step at once
    (``benchmarks/network_types.py``: the update against a plain ``nn.GRU`` loop). Inputs are
    the input's share of the gates ``(members, batch, T, 3·hidden)``, the start state, a
    mask ``(members, batch, T)`` that is 0 where the state is zeroed before a step, and the
    recurrent weights; the output is every step's hidden state."""

    @staticmethod
    def forward(ctx: Any, gates_x: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor,
                weight_hh: torch.Tensor, bias_hh: torch.Tensor) -> torch.Tensor:
        members, batch, steps, three = gates_x.shape
        hidden = three // 3
        # Buffers (members, T, batch, ·): a step is one contiguous block per member, and the
        # weight gradient one product over every step without copies.
        gates_x = gates_x.transpose(1, 2).contiguous()
        keep = keep.transpose(1, 2).unsqueeze(3).contiguous()
        gates_h = gates_x.new_empty(members, steps, batch, three)  # W_h h + b_h
        rz = gates_x.new_empty(members, steps, batch, 2 * hidden)  # σ: r, z
        n = gates_x.new_empty(members, steps, batch, hidden)
        outputs = gates_x.new_empty(members, steps, batch, hidden)
        h = h0
        for keep_t, x_rz, x_n, h_all, h_rz, h_n, rz_t, r, z, n_t, out in zip(
                *_steps(keep, gates_x[..., :2 * hidden], gates_x[..., 2 * hidden:], gates_h,
                        gates_h[..., :2 * hidden], gates_h[..., 2 * hidden:], rz,
                        rz[..., :hidden], rz[..., hidden:], n, outputs), strict=True):
            h = h * keep_t
            torch.baddbmm(bias_hh, h, weight_hh, out=h_all)
            torch.add(x_rz, h_rz, out=rz_t).sigmoid_()
            torch.addcmul(x_n, r, h_n, out=n_t).tanh_()
            h = torch.lerp(n_t, h, z, out=out)  # n + z (h − n)
        ctx.save_for_backward(h0, keep, rz, n, gates_h, outputs, weight_hh)
        return outputs.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, grad_outputs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h0, keep, rz, n, gates_h, outputs, weight_hh = ctx.saved_tensors
        members, steps, batch, hidden = n.shape
        previous = torch.cat([h0[:, None], outputs[:, :-1]], dim=1) * keep  # masked input h
        r, z = rz[..., :hidden], rz[..., hidden:]
        # What each gate's gradient is dh times, for every step at once.
        factor_n = (1 - z) * (1 - n * n)
        factor_z = (previous - n) * z * (1 - z)
        factor_r = gates_h[..., 2 * hidden:] * r * (1 - r)
        grad_outputs = grad_outputs.transpose(1, 2)
        grad_gates_h = n.new_empty(members, steps, batch, 3 * hidden)
        grad_n = n.new_empty(members, steps, batch, hidden)
        weight_hh_t = weight_hh.transpose(1, 2).contiguous()
        carried = n.new_zeros(members, batch, hidden)
        per_step = zip(*_steps(grad_outputs, factor_n, factor_z, factor_r, r, z, keep, grad_n,
                               grad_gates_h, grad_gates_h[..., :hidden],
                               grad_gates_h[..., hidden:2 * hidden],
                               grad_gates_h[..., 2 * hidden:]), strict=True)
        for grad_t, f_n, f_z, f_r, r_t, z_t, keep_t, d_n, d_h, d_r, d_z, d_hn in reversed(
                list(per_step)):
            dh = grad_t + carried
            torch.mul(dh, f_n, out=d_n)
            torch.mul(dh, f_z, out=d_z)
            torch.mul(d_n, f_r, out=d_r)
            torch.mul(d_n, r_t, out=d_hn)
            carried = torch.baddbmm(dh * z_t, d_h, weight_hh_t) * keep_t
        grad_gates_x = torch.cat([grad_gates_h[..., :2 * hidden], grad_n], dim=3)
        flat_gates = grad_gates_h.view(members, steps * batch, 3 * hidden)
        grad_weight = torch.bmm(previous.view(members, steps * batch, hidden).transpose(1, 2),
                                flat_gates)
        grad_bias = flat_gates.sum(dim=1, keepdim=True)
        return grad_gates_x.transpose(1, 2), carried, None, grad_weight, grad_bias


def _steps(*tensors: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """Each ``(members, T, ...)`` tensor's views of its steps: made once, not per step."""
    return [tensor.unbind(1) for tensor in tensors]


def numpy_gru_step(x: np.ndarray, h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
                   bias_ih: np.ndarray, bias_hh: np.ndarray) -> np.ndarray:
    """One GRU step in numpy alone, weights in ``nn.GRUCell``'s layout (a policy file's):
    ``x`` ``(batch, in)``, ``h`` ``(batch, hidden)`` → the next hidden state. How a recurrent
    policy is played without torch. Leading axes broadcast: members' weights ``(members,
    3·hidden, in)`` step inputs ``(members, batch, in)``."""
    gates_x = x @ np.swapaxes(weight_ih, -1, -2) + bias_ih
    gates_h = h @ np.swapaxes(weight_hh, -1, -2) + bias_hh
    x_r, x_z, x_n = np.split(gates_x, 3, axis=-1)
    h_r, h_z, h_n = np.split(gates_h, 3, axis=-1)
    r = _sigmoid(x_r + h_r)
    z = _sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return n + z * (h - n)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^−x)`` without overflow warnings for large ``|x|``: ``(1 + tanh(x/2)) / 2``."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))
