"""What keeps a fine-tuned network near what it was given, so that transfer keeps its gains.

Two terms, added to each member's DQN loss:

- **The teacher** (DQfD's large-margin loss, Hester et al. 2018): when every part was
  transferred (same spaces), the transferred network is a teacher whose greedy action should
  stay the student's: ``max_a [Q(s,a) + margin·(a ≠ a_T)] − Q(s,a_T)``, zero once the student
  ranks the teacher's action first by ``margin``. It is on while the teacher is at least as
  good as the student, i.e. while the member's last learning-curve point is no higher than
  its first (the transferred network's own score on the same episodes), and off while the
  student does better: a teacher keeps a solved task solved and lets a student past it.
- **The anchor** (L2-SP, Li et al. 2018): ``α·Σ(θ − θ₀)²`` over the transferred parameters
  that train, pulling them towards where they started.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hindsight_rl.core.config import PART_NAMES, FinetuneConfig
from hindsight_rl.core.networks import QNetwork


def large_margin_loss(q: torch.Tensor, teacher_action: torch.Tensor,
                      margin: float) -> torch.Tensor:
    """Each member's mean of ``max_a [Q(s,a) + margin·(a ≠ a_T)] − Q(s,a_T)`` over its rows;
    ``q`` is ``(members, batch, actions)``, ``teacher_action`` ``(members, batch, 1)``."""
    margins = torch.full_like(q, margin).scatter_(2, teacher_action, 0.0)
    return ((q + margins).amax(dim=2) - q.gather(2, teacher_action).squeeze(2)).mean(dim=1)


class Guidance:
    """The teacher and anchor terms of one stacked run (see the module docstring)."""

    def __init__(self, online: QNetwork, finetune: FinetuneConfig,
                 transferred: Sequence[str]) -> None:
        members = online.members
        self.teacher: QNetwork | None = None
        if finetune.teacher_coef > 0 and set(transferred) == set(PART_NAMES):
            self.teacher = QNetwork.stack([online.member(k) for k in range(members)])
            self.teacher.requires_grad_(False)
        self.coef, self.margin = finetune.teacher_coef, finetune.teacher_margin
        self.weight = torch.full((members,), self.coef if self.teacher is not None else 0.0)
        """Each member's teacher weight now: ``coef`` while the teacher is on, else 0."""
        self.teacher_score: list[float | None] = [None] * members
        """Each member's first learning-curve point: the transferred network's score."""
        self.anchor_coef = finetune.anchor_coef
        anchored = [p for p in online.part_parameters(
            [part for part in transferred if part not in finetune.frozen])]
        self.anchors = ([(p, p.detach().clone()) for p in anchored]
                        if self.anchor_coef > 0 else [])

    @property
    def active(self) -> bool:
        return self.teacher is not None or bool(self.anchors)

    def loss(self, q: torch.Tensor, obs: torch.Tensor) -> torch.Tensor | float:
        """The members' teacher and anchor terms ``(members,)`` for Q-values ``q`` of
        observations ``obs``."""
        total: torch.Tensor | float = 0.0
        if self.teacher is not None and bool(self.weight.any()):
            with torch.no_grad():
                teacher_action = self.teacher(obs).argmax(dim=2, keepdim=True)
            total = total + self.weight * large_margin_loss(q, teacher_action, self.margin)
        for parameter, start in self.anchors:
            total = total + self.anchor_coef * (parameter - start).pow(2).flatten(1).sum(dim=1)
        return total

    def observe(self, k: int, curve_point: float) -> None:
        """Member ``k``'s new learning-curve point: the first is the teacher's score; after
        it, the teacher is on while the member does no better."""
        if self.teacher is None:
            return
        if self.teacher_score[k] is None:
            self.teacher_score[k] = curve_point
        self.weight[k] = self.coef if curve_point <= self.teacher_score[k] else 0.0

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {"weight": self.weight}
        if self.teacher is not None:
            tensors.update({f"teacher.{k}": v for k, v in self.teacher.state_dict().items()})
        tensors.update({f"anchor.{i}": start for i, (_, start) in enumerate(self.anchors)})
        return tensors, {"teacher_score": self.teacher_score}

    def load_state(self, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
        self.weight.copy_(tensors["weight"])
        if self.teacher is not None:
            self.teacher.load_state_dict({k.removeprefix("teacher."): v
                                          for k, v in tensors.items()
                                          if k.startswith("teacher.")})
        for i, (_, start) in enumerate(self.anchors):
            start.copy_(tensors[f"anchor.{i}"])
        self.teacher_score = document["teacher_score"]
