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

from hindsight_rl.core.checkpoints import unprefixed
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


class AdamGroup:
    """Parameters that started training together, with Adam's moments and steps. Adam sees
    each member's slice of a parameter as a tensor of its own, so a member's arithmetic is
    the same whatever else is stacked (the fused kernel's vector and scalar paths round
    differently, and which elements take which depends on a tensor's size). Only the slices
    of ``training`` members step."""

    def __init__(self, parameters: list[torch.nn.Parameter], training: list[bool]) -> None:
        self.parameters = parameters
        self.exp_avg = [torch.zeros_like(p) for p in parameters]
        self.exp_avg_sq = [torch.zeros_like(p) for p in parameters]
        self.steps = [torch.zeros(p.shape[0]) for p in parameters]
        """Each member's step count of each parameter, as torch keeps one per tensor."""
        self.training = training
        self._select()

    def _select(self) -> None:
        self._training_members = [k for k, training in enumerate(self.training) if training]
        self._slices = [_members(tensors, self._training_members) for tensors in (
            self.parameters, self.exp_avg, self.exp_avg_sq, self.steps)]

    def start(self, members: Sequence[int]) -> None:
        """``members`` train from now on."""
        for k in members:
            self.training[k] = True
        self._select()

    def mask(self, grads: Sequence[torch.Tensor]) -> None:
        """Zero the gradients of members that do not train, before clipping counts them."""
        if not all(self.training):
            keep = torch.tensor(self.training, dtype=grads[0].dtype)
            for g in grads:
                g.mul_(keep.view(-1, *(1,) * (g.dim() - 1)))

    def step(self, grads: Sequence[torch.Tensor], learning_rate: float,
             betas: tuple[float, float], eps: float) -> None:
        parameters, exp_avg, exp_avg_sq, steps = self._slices
        adam(parameters, _members(grads, self._training_members), exp_avg, exp_avg_sq, [],
             steps, fused=True, amsgrad=False, beta1=betas[0], beta2=betas[1], lr=learning_rate,
             weight_decay=0.0, eps=eps, maximize=False)

    def state(self) -> dict[str, torch.Tensor]:
        """The moments and steps, named ``<i>.<exp_avg|exp_avg_sq|step>`` by parameter."""
        columns = {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.steps}
        return {f"{i}.{key}": value for key, values in columns.items()
                for i, value in enumerate(values)}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """A state from :meth:`state`, copied into this group's tensors."""
        for name, value in self.state().items():
            value.copy_(tensors[name])


def _members(tensors: Sequence[torch.Tensor], members: Sequence[int]) -> list[torch.Tensor]:
    """``members``' slices of every tensor, member by member within each tensor."""
    return [slices[k] for tensor in tensors for slices in (tensor.unbind(),) for k in members]


class StackedOptimizer:
    """Adam over a stacked network's trainable parts (any module with ``members`` and
    ``part_parameters``), each member's gradient clipped on its own (unless
    ``max_grad_norm`` is None): ``step(loss)`` differentiates, clips and steps;
    ``unfreeze(members)`` lets those members' frozen parts train."""

    def __init__(self, network: QNetwork | Any, frozen: Sequence[str], learning_rate: float,
                 max_grad_norm: float | None, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.learning_rate, self.max_grad_norm, self.betas, self.eps = (
            learning_rate, max_grad_norm, betas, eps)
        self.members = network.members
        self.frozen_parameters = network.part_parameters(frozen)
        for parameter in self.frozen_parameters:
            parameter.requires_grad_(False)
        self.groups = [AdamGroup([p for p in network.parameters() if p.requires_grad],
                                  [True] * self.members)]

    @property
    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for group in self.groups for p in group.parameters]

    @property
    def frozen_members(self) -> list[bool]:
        """Whether each member's frozen parts are still frozen."""
        if not self.frozen_parameters:
            return [False] * self.members
        if len(self.groups) == 1:
            return [True] * self.members
        return [not training for training in self.groups[1].training]

    def step(self, loss: torch.Tensor) -> None:
        """One update from ``loss``, the sum of the members' losses."""
        grads = torch.autograd.grad(loss, self.trainable)
        start = 0
        spans = []
        for group in self.groups:
            spans.append((group, grads[start:start + len(group.parameters)]))
            start += len(group.parameters)
        for group, group_grads in spans:
            group.mask(group_grads)
        if self.max_grad_norm is not None:
            clip_member_gradients(grads, self.max_grad_norm)
        with torch.no_grad():
            for group, group_grads in spans:
                group.step(group_grads, self.learning_rate, self.betas, self.eps)

    def unfreeze(self, members: Sequence[int] | None = None) -> None:
        """The frozen parts of ``members`` (default: all) start training, each member's Adam
        steps counted from now."""
        if not self.frozen_parameters:
            return
        if len(self.groups) == 1:
            for parameter in self.frozen_parameters:
                parameter.requires_grad_(True)
            self.groups.append(AdamGroup(self.frozen_parameters, [False] * self.members))
        self.groups[1].start(range(self.members) if members is None else members)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every group's moments and steps as tensors, and how many groups there are."""
        tensors = {f"{g}.{name}": value for g, group in enumerate(self.groups)
                   for name, value in group.state().items()}
        return tensors, {"groups": len(self.groups), "frozen_members": self.frozen_members}

    def load_state(self, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
        """A state from :meth:`state`, the members unfrozen then unfrozen again."""
        unfrozen = [k for k, frozen in enumerate(document["frozen_members"]) if not frozen]
        if document["groups"] == 2 and unfrozen:
            self.unfreeze(unfrozen)
        if document["groups"] != len(self.groups):
            raise ValueError(f"checkpoint has {document['groups']} Adam groups, the run "
                             f"{len(self.groups)}")
        for g, group in enumerate(self.groups):
            group.load_state(unprefixed(str(g), tensors))
