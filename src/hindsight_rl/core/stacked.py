"""Optimising the members of a stacked network as if each were trained alone.

The members' parameters are stacked along a leading axis (:class:`~hindsight_rl.core.networks.
QNetwork`), so one ``torch.autograd.grad`` call gives every member the gradient of its own
loss. Two things must still be done per member: gradient clipping takes each member's own
norm, and Adam, elementwise, needs nothing special. Frozen parts are left out of the optimiser
and need no gradient; unfreezing adds them as a parameter group of their own, whose Adam steps
count from then.

Adam is ``torch.optim.adam.adam``, the function ``torch.optim.Adam.step`` calls (fused
implementation), called directly with this class's own state: the class's per-step
bookkeeping (hooks, profiling, state discovery) costs as much as the arithmetic at these
sizes (``benchmarks/RESULTS.md``, update costs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim.adam import adam

from hindsight_rl.core.networks import QNetwork


def member_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each member's gradient norm ``(members,)``: over its slices of every tensor."""
    per_tensor = [torch.linalg.vector_norm(g, dim=tuple(range(1, g.dim()))) for g in grads]
    return torch.linalg.vector_norm(torch.stack(per_tensor, dim=1), dim=1)


def clip_member_gradients(grads: Sequence[torch.Tensor], max_norm: float) -> None:
    """Scale each member's gradient to a norm of at most ``max_norm`` in place, as
    ``torch.nn.utils.clip_grad_norm_`` does for one network (``max_norm / (norm + 1e-6)``,
    applied where it is below 1)."""
    norms = member_norms(grads)
    if float(norms.max()) + 1e-6 <= max_norm:  # most updates need no scaling
        return
    scale = (max_norm / (norms + 1e-6)).clamp_(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *(1,) * (g.dim() - 1)))


class _AdamGroup:
    """Parameters that started training together, with Adam's moments and steps. Adam sees
    each member's slice of a parameter as a tensor of its own, so a member's arithmetic is
    the same whatever else is stacked (the fused kernel's vector and scalar paths round
    differently, and which elements take which depends on a tensor's size)."""

    def __init__(self, parameters: list[torch.nn.Parameter]) -> None:
        self.parameters = parameters
        self.exp_avg = [torch.zeros_like(p) for p in parameters]
        self.exp_avg_sq = [torch.zeros_like(p) for p in parameters]
        self.steps = [torch.zeros(p.shape[0]) for p in parameters]
        """Each member's step count of each parameter, as torch keeps one per tensor."""
        self._slices = [_members(tensors) for tensors in (
            self.parameters, self.exp_avg, self.exp_avg_sq, self.steps)]

    def step(self, grads: Sequence[torch.Tensor], learning_rate: float,
             betas: tuple[float, float], eps: float) -> None:
        parameters, exp_avg, exp_avg_sq, steps = self._slices
        adam(parameters, _members(grads), exp_avg, exp_avg_sq, [], steps, fused=True,
             amsgrad=False, beta1=betas[0], beta2=betas[1], lr=learning_rate,
             weight_decay=0.0, eps=eps, maximize=False)

    def state(self) -> dict[str, list[torch.Tensor]]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.steps}


def _members(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Every member's slice of every tensor, member by member within each tensor."""
    return [member for tensor in tensors for member in tensor.unbind()]


class StackedOptimizer:
    """Adam over a stacked network's trainable parts, each member's gradient clipped on its
    own: ``step(loss)`` differentiates, clips and steps."""

    def __init__(self, network: QNetwork, frozen: Sequence[str], learning_rate: float,
                 max_grad_norm: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.learning_rate, self.max_grad_norm, self.betas, self.eps = (
            learning_rate, max_grad_norm, betas, eps)
        self.frozen = network.part_parameters(frozen)
        for parameter in self.frozen:
            parameter.requires_grad_(False)
        self.groups = [_AdamGroup([p for p in network.parameters() if p.requires_grad])]

    @property
    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for group in self.groups for p in group.parameters]

    def step(self, loss: torch.Tensor) -> None:
        """One update from ``loss``, the sum of the members' losses."""
        grads = torch.autograd.grad(loss, self.trainable)
        clip_member_gradients(grads, self.max_grad_norm)
        start = 0
        with torch.no_grad():
            for group in self.groups:
                end = start + len(group.parameters)
                group.step(grads[start:end], self.learning_rate, self.betas, self.eps)
                start = end

    def unfreeze(self) -> None:
        """Frozen parts start training, with Adam steps of their own."""
        if self.frozen:
            for parameter in self.frozen:
                parameter.requires_grad_(True)
            self.groups.append(_AdamGroup(self.frozen))
            self.frozen = []

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every group's moments and steps as tensors, and how many groups there are."""
        tensors = {f"{g}.{i}.{key}": value for g, group in enumerate(self.groups)
                   for key, values in group.state().items() for i, value in enumerate(values)}
        return tensors, {"groups": len(self.groups)}

    def load_state(self, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
        if document["groups"] != len(self.groups):
            raise ValueError(f"checkpoint has {document['groups']} Adam groups, the run "
                             f"{len(self.groups)}")
        for g, group in enumerate(self.groups):
            for key, values in group.state().items():
                for i, value in enumerate(values):
                    value.copy_(tensors[f"{g}.{i}.{key}"])
