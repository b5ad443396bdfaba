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
        if torch.is_grad_enabled():
            outputs = GRUSequence.apply(gates_x, h, keep, self.weight_hh, self.bias_hh)
            return outputs, outputs[:, :, -1]
        outputs = []  # nothing to differentiate: no state kept for a backward pass
        for t in range(steps):
            h = self.step(gates_x[:, :, t], h * keep[:, :, t, None])
            outputs.append(h)
        return torch.stack(outputs, dim=2), h

    def step(self, gates_x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step from the input's share of the gates ``W_i x + b_i`` ``(members, batch,
        3·hidden)`` and the hidden state ``(members, batch, hidden)``."""
        return gru_step(gates_x, h, self.weight_hh, self.bias_hh)[0]

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


def gru_step(gates_x: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor,
             bias_hh: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One step of stacked GRUs from the input's share of the gates ``W_i x + b_i``
    ``(members, batch, 3·hidden)`` and the state ``(members, batch, hidden)``: the next
    state, and the gates ``r, z, n`` with ``W_hn h + b_hn`` (what the backward pass needs)."""
    hidden = h.shape[-1]
    gates_h = torch.baddbmm(bias_hh, h, weight_hh)
    r, z = torch.sigmoid(gates_x[..., :2 * hidden] + gates_h[..., :2 * hidden]).chunk(2, -1)
    hn = gates_h[..., 2 * hidden:]
    n = torch.tanh(gates_x[..., 2 * hidden:] + r * hn)
    return n + z * (h - n), (r, z, n, hn)  # (1 − z) n + z h


class GRUSequence(torch.autograd.Function):
    """The recurrent half of a stacked GRU over a sequence, with backpropagation through
    time written out: autograd would record a dozen small operations per step and replay
    them one by one, where this records one node and runs the backward pass as a loop of
    fused steps (``benchmarks/``: the update against a plain ``nn.GRU`` loop). Inputs are
    the input's share of the gates ``(members, batch, T, 3·hidden)``, the start state, a
    mask ``(members, batch, T)`` that is 0 where the state is zeroed before a step, and the
    recurrent weights; the output is every step's hidden state."""

    @staticmethod
    def forward(ctx: Any, gates_x: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor,
                weight_hh: torch.Tensor, bias_hh: torch.Tensor) -> torch.Tensor:
        members, batch, steps, _ = gates_x.shape
        hidden = weight_hh.shape[1]
        previous = gates_x.new_empty(members, batch, steps, hidden)  # each step's h, masked
        saved = gates_x.new_empty(members, batch, steps, 4 * hidden)  # r, z, n, W_hn h + b_hn
        outputs = gates_x.new_empty(members, batch, steps, hidden)
        h = h0
        for t in range(steps):
            h = h * keep[:, :, t, None]
            previous[:, :, t] = h
            h, gates = gru_step(gates_x[:, :, t], h, weight_hh, bias_hh)
            outputs[:, :, t] = h
            torch.cat(gates, dim=-1, out=saved[:, :, t])
        ctx.save_for_backward(previous, saved, keep, weight_hh)
        return outputs

    @staticmethod
    def backward(ctx: Any, grad_outputs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        previous, saved, keep, weight_hh = ctx.saved_tensors
        members, batch, steps, hidden = previous.shape
        grad_gates_x = grad_outputs.new_empty(members, batch, steps, 3 * hidden)
        grad_gates_h = grad_outputs.new_empty(members, batch, steps, 3 * hidden)
        weight_hh_t = weight_hh.transpose(1, 2)
        carried = grad_outputs.new_zeros(members, batch, hidden)
        for t in reversed(range(steps)):
            r, z, n, hn = saved[:, :, t].chunk(4, dim=-1)
            h_prev = previous[:, :, t]
            dh = grad_outputs[:, :, t] + carried
            d_n = dh * (1 - z) * (1 - n * n)
            d_z = dh * (h_prev - n) * z * (1 - z)
            d_r = d_n * hn * r * (1 - r)
            grad_gates_x[:, :, t] = torch.cat([d_r, d_z, d_n], dim=-1)
            grad_gates_h[:, :, t] = torch.cat([d_r, d_z, d_n * r], dim=-1)
            carried = (dh * z + torch.bmm(grad_gates_h[:, :, t], weight_hh_t)) \
                * keep[:, :, t, None]
        flat_h = previous.reshape(members, batch * steps, hidden)
        flat_gates = grad_gates_h.reshape(members, batch * steps, 3 * hidden)
        grad_weight = torch.bmm(flat_h.transpose(1, 2), flat_gates)
        grad_bias = flat_gates.sum(dim=1, keepdim=True)
        return grad_gates_x, carried, None, grad_weight, grad_bias


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
